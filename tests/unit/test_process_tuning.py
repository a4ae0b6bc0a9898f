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
