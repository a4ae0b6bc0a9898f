"""drivesync: stage Google Drive folders on local disk and push checkpoints back, fast and verified.

The public API, and nothing else::

    import drivesync
    result = drivesync.pull("deeplearning/", "/content/deeplearning")
    drivesync.push("checkpoints/", "run42/checkpoints")
    with drivesync.watch("checkpoints/", "run42/checkpoints"):
        train()
    for entry in drivesync.ls("deeplearning/", recursive=True):
        print(entry.path, entry.size)
"""
from __future__ import annotations

#: The one place the version is written: pyproject.toml reads it from here ([tool.setuptools.dynamic]),
#: `drivesync --version` prints it.
__version__ = "0.1.0"

_EXPORTS = {
    "pull": "drivesync.puller",
    "PullResult": "drivesync.puller",
    "pull_async": "drivesync.puller",
    "latest_checkpoint": "drivesync.puller",
    "push": "drivesync.pusher",
    "PushResult": "drivesync.pusher",
    "push_async": "drivesync.pusher",
    "watch": "drivesync.watcher",
    "ls": "drivesync.listing",
    "ls_async": "drivesync.listing",
    "ListEntry": "drivesync.listing",
    "Settings": "drivesync.config",
    "DrivesyncError": "drivesync.errors",
    "DriveError": "drivesync.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Imported on first use so that `import drivesync` stays cheap and a CLI command loads only what it needs.
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'drivesync' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
