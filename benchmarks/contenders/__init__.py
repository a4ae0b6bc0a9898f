"""The contenders of the staging benchmark, in the order the report lists them."""
from __future__ import annotations

from .base import Contender
from .drivesync import Drivesync
from .official import Official
from .rclone import RcloneCopy, RcloneMount


def all_contenders() -> list[Contender]:
    return [Drivesync(), RcloneCopy(tuned=True), RcloneCopy(tuned=False), RcloneCopy(tuned=True, latest=True),
            RcloneCopy(tuned=False, latest=True), RcloneMount(), Official()]


NAMES = ("drivesync", "rclone-tuned", "rclone-default", "rclone-latest-tuned", "rclone-latest-default",
         "fuse-mount", "official")
