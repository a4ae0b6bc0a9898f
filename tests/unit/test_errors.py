"""errors.classify: what a Drive answer means (retry, refresh auth, fail)."""
import pytest

from drivesync.errors import Action, DriveError, DrivesyncError, UsageError, classify, hint_for


@pytest.mark.parametrize("status, reason, action", [
    (401, "authError", Action.REFRESH_AUTH),
    (429, "rateLimitExceeded", Action.RETRY),
    (403, "userRateLimitExceeded", Action.RETRY),
    (403, "rateLimitExceeded", Action.RETRY),
    (403, "downloadQuotaExceeded", Action.FAIL),
    (403, "dailyLimitExceeded", Action.FAIL),
    (403, "storageQuotaExceeded", Action.FAIL),
    (403, "insufficientFilePermissions", Action.FAIL),
    (403, "fileNotDownloadable", Action.FAIL),
    (403, "", Action.FAIL),
    (404, "notFound", Action.FAIL),
    (400, "badRequest", Action.FAIL),
    (408, "", Action.RETRY),
    (500, "backendError", Action.RETRY),
    (502, "", Action.RETRY),
    (503, "", Action.RETRY),
    (504, "", Action.RETRY),
])
def test_classify(status, reason, action):
    assert classify(status, reason) is action


def test_drive_error_message_is_one_line_and_hints_help():
    e = DriveError(403, "downloadQuotaExceeded", "The download quota for this file has been exceeded.")
    assert "\n" not in str(e) and "403" in str(e) and "downloadQuotaExceeded" in str(e)
    assert "24 hours" in hint_for(e)
    assert hint_for(DriveError(404, "notFound")).startswith("not found")
    assert hint_for(DriveError(500, "backendError")) == ""


def test_usage_errors_exit_2_and_are_drivesync_errors():
    assert issubclass(UsageError, DrivesyncError) and UsageError.exit_code == 2
    assert DrivesyncError.exit_code == 1
