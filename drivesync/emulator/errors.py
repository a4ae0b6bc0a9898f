"""Drive's error bodies, as one exception type the whole emulator raises.

Owns the JSON shape `{"error": {"code", "message", "errors": [...], "status"}}` and the canned
errors Drive answers with. Must never know about HTTP frameworks or sockets: the server turns a
`DriveError` into a response.
"""

from __future__ import annotations

import json

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class DriveError(Exception):
    """An error Drive would answer with; `body()` is the JSON Drive sends."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = dict(headers or {})

    def body(self) -> dict:
        item = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location is not None:
            item["location"] = self.location
            item["locationType"] = self.location_type or "parameter"
        err = {"code": self.code, "message": self.message, "errors": [item]}
        if self.code in STATUS_NAMES:
            err["status"] = STATUS_NAMES[self.code]
        return {"error": err}

    def body_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()


def not_found(file_id: str) -> DriveError:
    return DriveError(404, "notFound", f"File not found: {file_id}.", location="fileId")


def invalid_value(param: str, message: str = "Invalid Value") -> DriveError:
    return DriveError(400, "invalid", message, location=param)


def invalid_query() -> DriveError:
    return DriveError(400, "invalid", "Invalid Value", location="q")


def invalid_fields(selection: str) -> DriveError:
    return DriveError(
        400, "invalidParameter", f"Invalid field selection {selection}", location="fields"
    )


def bad_request(message: str) -> DriveError:
    return DriveError(400, "badRequest", message)


def auth_error() -> DriveError:
    return DriveError(
        401,
        "authError",
        "Invalid Credentials",
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
    )


def user_rate_limit(retry_after: float | None = None) -> DriveError:
    h = {"Retry-After": str(int(round(retry_after)))} if retry_after is not None else None
    return DriveError(403, "userRateLimitExceeded", "User Rate Limit Exceeded", domain="usageLimits", headers=h)


def rate_limit_403(retry_after: float | None = None) -> DriveError:
    h = {"Retry-After": str(int(round(retry_after)))} if retry_after is not None else None
    return DriveError(403, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers=h)


def rate_limit_429(retry_after: float | None = None) -> DriveError:
    h = {"Retry-After": str(int(round(retry_after)))} if retry_after is not None else None
    return DriveError(429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers=h)


def daily_upload_limit() -> DriveError:
    # The 750 GB/day cap arrives as a plain userRateLimitExceeded (drive-api.md).
    return DriveError(403, "userRateLimitExceeded", "User rate limit exceeded.", domain="usageLimits")


def backend_error(code: int = 500) -> DriveError:
    if code == 503:
        return DriveError(503, "backendError", "The service is currently unavailable.")
    return DriveError(code, "backendError", "Backend Error")


def file_not_downloadable() -> DriveError:
    return DriveError(
        403,
        "fileNotDownloadable",
        "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
        location="alt",
    )


def export_too_large() -> DriveError:
    return DriveError(403, "exportSizeLimitExceeded", "This file is too large to be exported.")


def abusive_file() -> DriveError:
    return DriveError(
        403,
        "cannotDownloadAbusiveFile",
        "This file has been identified as malware or spam and cannot be downloaded.",
        location="acknowledgeAbuse",
    )


def storage_quota_exceeded() -> DriveError:
    return DriveError(403, "storageQuotaExceeded", "The user's Drive storage quota has been exceeded.")


def upload_session_not_found() -> DriveError:
    return DriveError(404, "notFound", "Not Found")


def revision_not_found(revision_id: str) -> DriveError:
    return DriveError(404, "notFound", f"Revision not found: {revision_id}.", location="revisionId")


def not_implemented(what: str) -> DriveError:
    """A real Drive v3 method (or feature of one) the emulator does not emulate: an honest 501, not a 404."""
    return DriveError(501, "notImplemented", f"Not implemented by the drivesync emulator: {what}.")


def no_such_method(http_method: str, path: str) -> DriveError:
    """A request that names no Drive v3 method at all."""
    return DriveError(400, "badRequest", f"No Drive v3 method matches {http_method} {path}.")


# ---------------------------------------------------------------------- sharing (sharing.py)


def insufficient_permissions() -> DriveError:
    """A write (or share, trash, delete, revisions) on an item the account may only read, or less."""
    return DriveError(403, "insufficientFilePermissions", "The user does not have sufficient permissions for this file.")


def cannot_download() -> DriveError:
    """alt=media / export of a copyRequiresWriterPermission file by a reader or commenter (the message is ours)."""
    return DriveError(403, "cannotDownloadFile",
                      "The owner has disabled downloading, printing and copying of this file for readers and commenters.")


def shared_drive_not_found(drive_id: str) -> DriveError:
    return DriveError(404, "notFound", f"Shared drive not found: {drive_id}", location="driveId")


def permission_not_found(permission_id: str) -> DriveError:
    return DriveError(404, "notFound", f"Permission not found: {permission_id}.", location="permissionId")


def required(param: str, message: str | None = None) -> DriveError:
    return DriveError(400, "required", message or f"Required parameter: {param}", location=param)
