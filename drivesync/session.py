"""Opening a connection to one Drive account: settings + credentials -> Transport -> Drive.

Every command (pull, push, ls, whoami) opens Drive through ``open_drive`` so they share pacing,
retries and credential handling. It owns nothing but that wiring.
"""
from __future__ import annotations

import contextlib
import logging
from typing import AsyncIterator

from .auth import Authorizer, find_credentials
from .config import Settings
from .drive import Drive
from .transport import Transport

log = logging.getLogger("drivesync")


@contextlib.asynccontextmanager
async def open_drive(settings: Settings, *, credentials: str | None = None, authorizer: Authorizer | None = None,
                     on_retry=None, **credential_options) -> AsyncIterator[Drive]:
    """``async with open_drive(settings, credentials=FILE) as drive:``; ``drive.t`` is the Transport."""
    if authorizer is None:
        chosen = find_credentials(credentials, **credential_options)
        log.info("credentials: %s", chosen.source)
        authorizer = Authorizer(chosen, give_up_after=settings.give_up_after)
    async with Transport(settings, authorizer, on_retry=on_retry) as transport:
        yield Drive(transport, settings)
