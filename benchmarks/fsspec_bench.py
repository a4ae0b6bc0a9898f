"""drivesync:// random reads (issue 12 item 2): a Parquet file read column by column through pyarrow.

One Parquet file of COLUMNS float64 columns (random values: nothing compresses) in ROW_GROUPS row groups is put on
an emulator running as its own process under a profile (drive-like: 100 ms to the first media byte, 25 MB/s per
connection, 150 MB/s in all, 50 ms per metadata call). Then ``pyarrow.parquet.read_table(path, filesystem=fs,
columns=[c])`` reads each column once, one at a time, in a shuffled order, through ``drivesync.fs.DriveFileSystem``
(ranged GETs through a read-ahead cache); the 'parts' row reads through ``fsspec.parquet.open_parquet_file``
instead, which fetches a column's chunks all at once with ``fs.cat_ranges``. For each cache (drivesync://'s
AdaptiveReadAhead, fsspec's readahead) and block size (fsspec's default is readahead, 5 MiB blocks) it reports:

- the random-read throughput: the bytes of the column chunks asked for / the wall seconds of all the reads;
- requests: the client's (Transport) and the emulator's (/_emulator/stats), in all and per column;
- read amplification: media bytes the emulator served / the column bytes asked for;

and, for comparison, the same file read front to back (``cat_file``, and a reader's 1 MiB ``read()`` calls).

    python benchmarks/fsspec_bench.py                     # 16 columns x 4 MiB, drive-like
    python benchmarks/fsspec_bench.py --quick             # 6 columns x 1 MiB
    python benchmarks/fsspec_bench.py --profile unthrottled --configs drivesync:256K,readahead:16M

Prints the machine's load (os.getloadavg) before and after, one JSON line per configuration, then a summary table.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.pull_bench import Server  # noqa: E402
from drivesync.config import parse_size  # noqa: E402

MiB = 1024 * 1024


def make_parquet(columns: int, column_bytes: int, row_groups: int) -> tuple[bytes, dict[str, int]]:
    """The file, and the bytes of each column's chunks (what reading that column must fetch)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = column_bytes // 8
    rng = np.random.default_rng(12)
    table = pa.table({f"c{i:02d}": rng.random(rows) for i in range(columns)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=max(1, rows // row_groups), compression="snappy")
    data = sink.getvalue().to_pybytes()
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    sizes = {name: 0 for name in table.column_names}
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(g).column(c)
            sizes[col.path_in_schema] += col.total_compressed_size
    return data, sizes


def seed_file(data_dir: str, name: str, data: bytes) -> None:
    from drivesync.emulator.store import Store        # benchmarks may seed offline; the client never does

    store = Store(data_dir)
    folder = store.add_folder("bench")
    store.add_file(name, data, parent_id=folder)
    store.close()


def stats(server: Server) -> dict:
    return server.admin("stats")


def run_once(server: Server, cache: str, block_size: int, order: list[str], sizes: dict[str, int], expect) -> dict:
    import fsspec.parquet
    import pyarrow.parquet as pq

    from drivesync.fs import AdaptiveReadAhead, DriveFileSystem

    fs = DriveFileSystem(credentials=server.credentials, api_url=server.url, block_size=block_size,
                         cache_type=AdaptiveReadAhead.name if cache == "parts" else cache, skip_instance_cache=True)
    path = "bench/table.parquet"
    fs.info(path)                                   # resolving the path is not part of the reads
    client_before = fs._session_.drive.t.stats.requests
    before = stats(server)
    per_column = []
    started = time.perf_counter()
    for name in order:
        t0 = time.perf_counter()
        r0 = fs._session_.drive.t.stats.requests
        if cache == "parts":
            # fsspec.parquet: the footer, then every chunk of the column fetched at once (fs.cat_ranges)
            with fsspec.parquet.open_parquet_file(path, fs=fs, columns=[name], engine="pyarrow",
                                                  footer_sample_size=64 * 1024) as f:
                table = pq.read_table(f, columns=[name])
        else:
            table = pq.read_table(path, filesystem=fs, columns=[name])
        per_column.append({"column": name, "s": round(time.perf_counter() - t0, 3),
                           "requests": fs._session_.drive.t.stats.requests - r0})
        if not expect(name, table):
            raise SystemExit(f"column {name} read back different values")
    wall = time.perf_counter() - started
    after = stats(server)
    fs.close()
    asked = sum(sizes[n] for n in order)
    served = after["bytes_sent"] - before["bytes_sent"]
    media = after["by_kind"].get("media", 0) - before["by_kind"].get("media", 0)
    client = per_column and sum(c["requests"] for c in per_column)
    return {
        "cache": cache, "block_size": block_size, "columns": len(order), "column_bytes": asked,
        "wall_s": round(wall, 3),
        "random_read_MBps": round(asked / wall / 1e6, 1),
        "client_requests": client, "client_requests_before_reads": client_before,
        "emulator_requests": after["requests"] - before["requests"], "emulator_media_requests": media,
        "requests_per_column": round(client / len(order), 2),
        "served_bytes": served, "read_amplification": round(served / asked, 2),
        "per_column": per_column,
    }


def run_sequential(server: Server, size: int) -> list[dict]:
    """The same file front to back: ``cat_file`` (parallel ranges) and a reader's 1 MiB ``read()`` calls
    (the read-ahead grows, then goes as parallel ranges): MB/s and requests."""
    from drivesync.fs import DriveFileSystem

    rows = []
    for how in ("cat_file", "read(1 MiB) loop"):
        fs = DriveFileSystem(credentials=server.credentials, api_url=server.url, skip_instance_cache=True)
        path = "bench/table.parquet"
        fs.info(path)
        r0 = fs._session_.drive.t.stats.requests
        t0 = time.perf_counter()
        if how == "cat_file":
            got = len(fs.cat_file(path))
        else:
            got = 0
            with fs.open(path, "rb") as f:
                while chunk := f.read(MiB):
                    got += len(chunk)
        wall = time.perf_counter() - t0
        if got != size:
            raise SystemExit(f"{how} read {got} bytes of {size}")
        rows.append({"sequential": how, "bytes": size, "wall_s": round(wall, 3), "MBps": round(size / wall / 1e6, 1),
                     "requests": fs._session_.drive.t.stats.requests - r0})
        fs.close()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="drive-like")
    ap.add_argument("--columns", type=int, default=None)
    ap.add_argument("--column-size", default=None, help="bytes per column (default 4M; --quick 1M)")
    ap.add_argument("--row-groups", type=int, default=4)
    ap.add_argument("--configs", default="drivesync:256K,readahead:5M,readahead:1M,parts:256K",
                    help="cache:block_size pairs to try; the first is drivesync://'s default; 'parts' reads "
                         "through fsspec.parquet.open_parquet_file instead of read_table(filesystem=fs)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="write the JSON lines here too")
    args = ap.parse_args(argv)
    columns = args.columns or (6 if args.quick else 16)
    column_bytes = parse_size(args.column_size or ("1M" if args.quick else "4M"))
    configs = [(c.split(":")[0], parse_size(c.split(":")[1])) for c in args.configs.split(",") if c.strip()]

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"load before: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    data, sizes = make_parquet(columns, column_bytes, args.row_groups)
    reference = pq.read_table(pa.BufferReader(data))

    def expect(name, table):
        return np.array_equal(table.column(name).to_numpy(), reference.column(name).to_numpy())

    work = tempfile.mkdtemp(prefix="fsspec-bench-")
    os.environ.setdefault("DRIVESYNC_STATE_DIR", os.path.join(work, "state"))
    results, sequential = [], []
    try:
        drive_dir = os.path.join(work, "drive")
        os.makedirs(drive_dir)
        seed_file(drive_dir, "table.parquet", data)
        order = sorted(sizes)
        random.Random(7).shuffle(order)
        with Server(drive_dir, args.profile) as server:
            for cache, block in configs:
                row = run_once(server, cache, block, order, sizes, expect)
                row.update(profile=args.profile, file_bytes=len(data), row_groups=args.row_groups)
                results.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "per_column"}), flush=True)
            sequential = run_sequential(server, len(data))
            for row in sequential:
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load after: {os.getloadavg()}")
    print(f"\n{len(data) / MiB:.1f} MiB Parquet, {columns} columns x {args.row_groups} row groups, "
          f"profile {args.profile}; each column read once with pyarrow.parquet.read_table(columns=[c])")
    print(f"{'cache':>10} {'block':>8} {'MB/s':>7} {'wall s':>7} {'req/col':>8} {'media req':>9} {'amplif.':>8}")
    for r in results:
        print(f"{r['cache']:>10} {r['block_size'] // 1024:>7}K {r['random_read_MBps']:>7} {r['wall_s']:>7} "
              f"{r['requests_per_column']:>8} {r['emulator_media_requests']:>9} {r['read_amplification']:>8}")
    for r in sequential:
        print(f"front to back, {r['sequential']}: {r['MBps']} MB/s, {r['requests']} requests, {r['wall_s']} s")
    if args.out:
        with open(args.out, "w") as fh:
            for r in results:
                fh.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
