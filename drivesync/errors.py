"""Error types, and the one place that decides what a failed Drive call means.

``classify(status, reason)`` is pure: it maps Drive's answer to RETRY, REFRESH_AUTH or FAIL.
The transport applies it to every request; nothing else re-decides. Messages never carry tokens.

Each error type carries the exit code the CLI ends with (rclone's table where it fits; README "Exit codes"):
0 ok, 1 any other error, 2 usage, 3 not found (REMOTE on Drive or LOCAL on disk), 5 temporary (Drive
unreachable or failing until --give-up-after: try again later), 6 some files failed (the rest were
transferred), 7 fatal (credentials missing or rejected, Drive full, no write access: retrying will not help),
9 nothing transferred (only with --error-on-no-transfer), 130 interrupted. 4 (rclone: file not found) and 8
(rclone: --max-transfer reached) are not used: drivesync cannot tell a missing file from a missing folder
before it finds either, and has no transfer quota.
"""
from __future__ import annotations

import enum


#: The CLI's exit codes (see the module docstring).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3
EXIT_TEMPORARY, EXIT_SOME_FAILED, EXIT_FATAL, EXIT_NO_TRANSFER, EXIT_INTERRUPTED = 5, 6, 7, 9, 130


class DrivesyncError(Exception):
    """An error with a one-line message meant for the user (the CLI prints it and exits non-zero)."""

    exit_code = EXIT_ERROR


class UsageError(DrivesyncError):
    """Bad input: a malformed flag, an unwritable target, a path that cannot be used."""

    exit_code = EXIT_USAGE


#: An empty LOCAL: os.path.abspath("") is the current folder, which nobody means by it.
EMPTY_LOCAL = "an empty path names no file or folder (write . for this folder)"


class RemoteNotFound(DrivesyncError):
    """A remote path or id that does not exist."""

    exit_code = EXIT_NOT_FOUND


class LocalNotFound(UsageError):
    """LOCAL (what push uploads) does not exist (a UsageError for callers, exit 3 as not found)."""

    exit_code = EXIT_NOT_FOUND


class NotAFolder(DrivesyncError):
    """A file where a folder was expected."""


class AmbiguousPath(DrivesyncError):
    """Several items answer one path: the user must pick one by id."""


class NoAccess(RemoteNotFound):
    """An id, link or shared item this account cannot see (Drive answers 404 for what is not shared):
    the message names the account in use and suggests asking the owner to share it."""


class NoWriteAccess(DrivesyncError):
    """Push into a folder this account may only read (capabilities.canAddChildren=false, or Drive's
    403 insufficientFilePermissions)."""

    exit_code = EXIT_FATAL


class AuthError(DrivesyncError):
    """Credentials that cannot work (missing, malformed, revoked): says what to run instead."""

    exit_code = EXIT_FATAL


class DriveError(DrivesyncError):
    """Drive answered with an error status, or (status 0) could not be reached at all."""

    def __init__(self, status: int, reason: str = "", message: str = "", *, retry_after: float | None = None,
                 method: str = "", what: str = "", host: str = ""):
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.method = method
        self.what = what
        self.host = host
        super().__init__(self.describe())

    @property
    def exit_code(self) -> int:
        """404: not found (3); an error that passes with time (rate limits, 5xx, today's quota): 5; else 1."""
        if self.status == 404:
            return EXIT_NOT_FOUND
        if classify(self.status, self.reason) is Action.RETRY or self.reason in ("downloadQuotaExceeded",
                                                                                 "dailyLimitExceeded"):
            return EXIT_TEMPORARY
        return EXIT_ERROR

    def describe(self) -> str:
        """'Drive answered 403 storageQuotaExceeded: The user's ... (upload x)', or for status 0
        'could not reach www.googleapis.com: connection refused (files.list)'."""
        if self.status == 0:
            text = f"could not reach {self.host or 'Drive'}"
        else:
            text = f"Drive answered {self.status}"
            if self.reason:
                text += f" {self.reason}"
        if self.message:
            text += f": {self.message}"
        if self.what:
            text += f" ({self.what})"
        return text

    def short(self) -> str:
        """What failed, in a few words: '503 from www.googleapis.com', 'connection refused by HOST'."""
        host = self.host or "Drive"
        if self.status == 0:
            return f"{self.message or 'no connection'} ({host})"
        return f"{self.status}{' ' + self.reason if self.reason else ''} from {host}"


#: The reason given to an answer with an ok status whose body could not be read (not JSON, cut
#: short, compressed against our wishes). Retried like a 5xx.
BAD_ANSWER = "badAnswer"


class StopsTheRun(DrivesyncError):
    """An error that would fail every other file of the run the same way: the run stops at once with
    this one line instead of reporting it once per file."""


class StorageFull(StopsTheRun):
    """403 storageQuotaExceeded: the account's Drive is full; no upload can succeed."""

    exit_code = EXIT_FATAL


class DriveUnreachable(StopsTheRun):
    """Drive kept failing (no connection, 5xx, unreadable answers) for longer than ``give_up_after``
    seconds without any progress: the whole run stops with one line naming the host and the last error."""

    exit_code = EXIT_TEMPORARY


class JournalError(StopsTheRun):
    """The local journal (state.py) failed in a way every later write would too: the run stops with one line."""


class JournalUnwritable(JournalError):
    """The journal cannot be written (a full disk, a read-only file system, no permission)."""


class JournalDamaged(JournalError):
    """The journal turned out damaged while running; the next run moves it aside and starts a new one."""


class RemoteChanged(DrivesyncError):
    """The file changed on Drive while it was being downloaded (an answer's size or hash is not the listing's).
    ``fresh``: Drive's current metadata, when it was fetched to find that out."""

    def __init__(self, message: str, *, fresh=None):
        super().__init__(message)
        self.fresh = fresh


class TransferInterrupted(DrivesyncError):
    """A connection dropped or stalled (before or during a body); the caller may resume."""


class BodyAborted(DrivesyncError):
    """A streamed request body's source refused to go on (the local file changed while it was sent): the
    request ended before its last byte, so Drive committed nothing of it. The transport does not retry it."""


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
    if status == 0 or reason == BAD_ANSWER:
        return Action.RETRY  # no answer at all: connection refused, reset or timed out
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
    if status == 501:
        return Action.FAIL  # not implemented: asking again changes nothing
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
