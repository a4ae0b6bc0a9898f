"""What a drivesync command sets for its own process (the collector's threshold) and the library never
touches in a caller's process."""
import subprocess
import sys

PROBE = """
import gc, json, sys
before = gc.get_threshold()
import drivesync, drivesync.puller, drivesync.pusher
imported = gc.get_threshold()
from drivesync.cli import GC_THRESHOLD, main
code = main([])            # no command: prints the help, returns 2
print(json.dumps([before, imported, gc.get_threshold(), list(GC_THRESHOLD), code]))
"""


def test_a_command_collects_garbage_less_often_and_the_library_leaves_the_collector_alone():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    import json

    before, imported, after, wanted, code = json.loads(out.strip().splitlines()[-1])
    assert code == 2
    assert imported == before                      # importing the library changes nothing
    assert after == wanted and wanted[0] > before[0]


EXIT_PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count(), flush=True))
from drivesync.cli import run
sys.argv = ["drivesync"]   # no command: the help, exit 2
run()
"""


def test_the_program_ends_without_the_last_collection_and_still_runs_its_exit_handlers():
    done = subprocess.run([sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True)
    assert done.returncode == 2
    assert "usage: drivesync" in done.stdout
    frozen = int(done.stdout.strip().splitlines()[-1].split(":")[1])
    assert frozen > 1000          # the objects alive at exit were moved out of the collector's reach


def test_the_installed_command_and_python_m_drivesync_go_through_run():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert 'drivesync = "drivesync.cli:run"' in (root / "pyproject.toml").read_text().splitlines()
    assert "run()" in (root / "drivesync" / "__main__.py").read_text()
