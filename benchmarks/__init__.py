"""Benchmarks: side-by-side staging times of drivesync, rclone, a FUSE mount and the official client
against the project's Drive emulator. Run ``python -m benchmarks --help``."""
