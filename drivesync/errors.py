"""Error types, and the one place that decides what a failed Drive call means.

``classify(status, reason)`` is pure: it maps Drive's answer to RETRY, REFRESH_AUTH or FAIL.
The transport applies it to every request; nothing else re-decides. Messages never carry tokens.
"""
from __future__ import annotations

import enum


class DrivesyncError(Exception):
    """An error with a one-line message meant for the user (the CLI prints it and exits non-zero)."""

    exit_code = 1


class UsageError(DrivesyncError):
    """Bad input: a malformed flag, an unwritable target, a path that cannot be used."""

    exit_code = 2


class RemoteNotFound(DrivesyncError):
    """A remote path or id that does not exist."""


class NotAFolder(DrivesyncError):
    """A file where a folder was expected."""


class AmbiguousPath(DrivesyncError):
    """Several items answer one path: the user must pick one by id."""


class AuthError(DrivesyncError):
    """Credentials that cannot work (missing, malformed, revoked): says what to run instead."""

    exit_code = 3


class DriveError(DrivesyncError):
    """Drive answered with an error status."""

    def __init__(self, status: int, reason: str = "", message: str = "", *, retry_after: float | None = None,
                 method: str = "", what: str = ""):
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.method = method
        self.what = what
        text = f"Drive answered {status}"
        if reason:
            text += f" {reason}"
        if message:
            text += f": {message}"
        if what:
            text += f" ({what})"
        super().__init__(text)


class TransferInterrupted(DrivesyncError):
    """A connection dropped or stalled (before or during a body); the caller may resume."""


class VerificationFailed(DrivesyncError):
    """Content arrived but its size or checksum is not what Drive reported."""


class Action(enum.Enum):
    RETRY = "retry"
    REFRESH_AUTH = "refresh-auth"
    FAIL = "fail"


#: 403 reasons that pass with time (pace down and retry).
RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded", "sharingRateLimitExceeded"})
#: 403 reasons that will not pass soon: fail the file fast with a clear message.
HARD_QUOTA_REASONS = frozenset({"downloadQuotaExceeded", "dailyLimitExceeded", "storageQuotaExceeded",
                                "quotaExceeded", "uploadLimitExceeded", "teamDriveFileLimitExceeded"})


def classify(status: int, reason: str = "") -> Action:
    """What to do about a Drive error answer. Pure; the transport applies it."""
    if status == 401:
        return Action.REFRESH_AUTH
    if status == 429 or status == 408:
        return Action.RETRY
    if status == 403:
        if reason in HARD_QUOTA_REASONS:
            return Action.FAIL
        if reason in RATE_LIMIT_REASONS:
            return Action.RETRY
        return Action.FAIL
    if status >= 500:
        return Action.RETRY
    return Action.FAIL


def hint_for(error: DriveError) -> str:
    """A short human hint for errors users can act on."""
    if error.reason == "downloadQuotaExceeded":
        return "Drive's download quota for this file is exhausted; try again in 24 hours or copy the file."
    if error.reason == "dailyLimitExceeded":
        return "the daily API limit of this project is used up; try again tomorrow or use your own OAuth client."
    if error.reason == "storageQuotaExceeded":
        return "the Drive account is full."
    if error.reason == "cannotDownloadAbusiveFile":
        return "Drive flagged this file as abusive; download it from the web UI if you trust it."
    if error.status == 404:
        return "not found (deleted, or not shared with this account)."
    if error.reason in ("insufficientPermissions", "insufficientFilePermissions"):
        return "this account may not do that (check the credentials' scope and the file's sharing)."
    return ""
