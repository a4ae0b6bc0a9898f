"""A Google Drive v3 server for tests, benchmarks and offline demos.

It imports nothing from the drivesync client: the two share no code, so a bug cannot hide in both.
Start it with `python -m drivesync.emulator` or in-process with `Emulator`; see docs/emulator.md.
"""

from .limits import PROFILES, Profile, TokenBucket
from .store import Store


def __getattr__(name):
    # Emulator pulls in aiohttp; import it lazily so `Store` alone stays light.
    if name == "Emulator":
        from .testing import Emulator

        return Emulator
    raise AttributeError(name)


__all__ = ["Emulator", "PROFILES", "Profile", "Store", "TokenBucket"]
