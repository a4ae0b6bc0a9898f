"""Does ``drivesync.watch`` slow down real training? A short PyTorch loop, run twice.

Phase 1 trains without a watcher, phase 2 with ``drivesync.watch(...)`` uploading every checkpoint to
an emulator started in a subprocess on the same machine. Both phases save a checkpoint of a few hundred
MB every ``--save-every`` seconds, alternating the two ways torch users save (``torch.save`` in place;
``torch.save`` to a tmp name + ``os.replace``). Reported: mean step time of each phase (save steps
excluded, timed with CUDA synchronisation), the effect in % (target < 1 %), the time spent in saves,
and the upload lag (checkpoint complete -> verified on Drive), median and worst. Afterwards every
checkpoint's final version is listed back from Drive over the API and compared by size and md5
(``verified_on_drive``; exit status 1 if not).

    python benchmarks/gpu_watch_check.py                 # CUDA, about 2-3 minutes
    python benchmarks/gpu_watch_check.py --cpu --quick   # a smoke run anywhere torch is installed
Needs only ``pip install -e .`` and torch; prints a JSON summary and writes $OUT/gpu_watch.json if OUT is set.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from push_bench import EmulatorProcess, md5_of  # noqa: E402


def build(torch, device, width: int, depth: int):
    layers = []
    for _ in range(depth):
        layers += [torch.nn.Linear(width, width), torch.nn.GELU()]
    layers.append(torch.nn.Linear(width, 10))
    model = torch.nn.Sequential(*layers).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.0)
    return model, optimizer


def train_phase(torch, device, args, ckpt_dir: str, label: str) -> dict:
    torch.manual_seed(0)
    model, optimizer = build(torch, device, args.width, args.depth)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(args.batch, args.width, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(args.warmup):
        step()
    sync()
    step_times, save_times, completed = [], [], {}
    started = time.perf_counter()
    next_save = started + args.save_every
    saves = 0
    while time.perf_counter() - started < args.seconds:
        t0 = time.perf_counter()
        step()
        sync()
        step_times.append(time.perf_counter() - t0)
        if time.perf_counter() >= next_save:
            t1 = time.perf_counter()
            state = {"model": model.state_dict(), "step": len(step_times)}
            if saves % 2 == 0:
                name = f"{label}-step{len(step_times)}.pt"          # torch.save in place
                torch.save(state, os.path.join(ckpt_dir, name))
            else:
                name = "last.ckpt"                                   # tmp + os.replace, overwritten
                tmp = os.path.join(ckpt_dir, name + ".tmp")
                torch.save(state, tmp)
                os.replace(tmp, os.path.join(ckpt_dir, name))
            completed.setdefault(name, []).append(time.time())
            save_times.append(time.perf_counter() - t1)
            saves += 1
            next_save = time.perf_counter() + args.save_every
    return {"steps": len(step_times), "mean_step_ms": statistics.fmean(step_times) * 1e3,
            "median_step_ms": statistics.median(step_times) * 1e3, "saves": saves,
            "save_s_total": sum(save_times), "completed": completed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (a smoke test of the script)")
    ap.add_argument("--quick", action="store_true", help="tiny model, short phases")
    ap.add_argument("--seconds", type=float, default=60.0, help="training time per phase")
    ap.add_argument("--save-every", type=float, default=8.0)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=4, help="4 x 4096^2 fp32 ~ 270 MB per checkpoint")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--profile", default="unthrottled", help="emulator profile (unthrottled or drive-like)")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.save_every, args.width, args.depth, args.batch, args.warmup = 8.0, 2.0, 512, 2, 64, 3

    import torch

    import drivesync

    device = torch.device("cpu" if args.cpu or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.cpu:
        print("no CUDA device: pass --cpu to run on the CPU anyway", file=sys.stderr)
        return 2
    summary = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "profile": args.profile, "seconds_per_phase": args.seconds,
               "save_every_s": args.save_every}
    with tempfile.TemporaryDirectory(prefix="gpu-watch-") as work:
        os.environ.setdefault("DRIVESYNC_STATE_DIR", os.path.join(work, "state"))
        base_dir = os.path.join(work, "baseline")
        watch_dir = os.path.join(work, "watched")
        os.makedirs(base_dir)
        os.makedirs(watch_dir)
        baseline = train_phase(torch, device, args, base_dir, "base")
        with EmulatorProcess(work, args.profile) as emu:
            settings = drivesync.Settings(api_url=emu.url)
            flush_started = None
            with drivesync.watch(watch_dir, "gpu-check/ckpt", settings=settings, credentials=emu.credentials,
                                 settle=5.0) as w:
                watched = train_phase(torch, device, args, watch_dir, "watch")
                flush_started = time.time()
            flush_s = time.time() - flush_started
            status = w.status()
            # What the watcher was timed for must be on Drive: the final version of every checkpoint, listed
            # back over the API (push_bench.EmulatorProcess.listed_back: stdlib HTTP, not drivesync).
            want = {f: (os.path.getsize(os.path.join(watch_dir, f)), md5_of(os.path.join(watch_dir, f)))
                    for f in os.listdir(watch_dir) if not f.endswith(".tmp")}
            on_drive = emu.listed_back("gpu-check/ckpt")
            verified = on_drive == want
        ckpt_bytes = max((os.path.getsize(os.path.join(watch_dir, f)) for f in os.listdir(watch_dir)), default=0)
    # Lag: each checkpoint name's last completion -> its last durable record.
    durable = {}
    for d in w.durable:
        durable[d["rel"]] = max(durable.get(d["rel"], 0.0), d["durable_at"])
    lags = sorted(durable[n] - times[-1] for n, times in watched["completed"].items() if n in durable)
    effect = (watched["mean_step_ms"] / baseline["mean_step_ms"] - 1) * 100
    summary.update({
        "checkpoint_bytes": ckpt_bytes,
        "baseline": {k: v for k, v in baseline.items() if k != "completed"},
        "watched": {k: v for k, v in watched.items() if k != "completed"},
        "step_time_effect_pct": round(effect, 3),
        "median_step_effect_pct": round((watched["median_step_ms"] / baseline["median_step_ms"] - 1) * 100, 3),
        "uploads_done": status["done"], "upload_failures": status["failed"],
        "lag_median_s": round(statistics.median(lags), 2) if lags else None,
        "lag_worst_s": round(max(lags), 2) if lags else None,
        "flush_at_exit_s": round(flush_s, 2),
        "verified_on_drive": verified,
        "target": "step_time_effect_pct < 1",
    })
    if not verified:
        summary["unverified"] = sorted(set(want.items()) ^ set(on_drive.items()))[:5]
    text = json.dumps(summary, indent=2)
    print(text)
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "gpu_watch.json"), "w") as fh:
            fh.write(text + "\n")
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
