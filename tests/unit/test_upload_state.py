"""The resumable-upload state machine, driven by hand-written Drive answers (no I/O)."""
import pytest

from drivesync.upload import (ACTIVE, FINISHED, INITIAL, INVALID, ChunkPlan, ProtocolError, ResumableUpload,
                              SessionExpired, parse_range)

K = 256 * 1024


def started(total, chunk=K):
    u = ResumableUpload(total, chunk)
    assert u.state == INITIAL
    u.process_initiate(200, {"Location": "http://x/upload?upload_id=1"})
    assert u.state == ACTIVE and u.session_uri.endswith("upload_id=1")
    return u


def test_chunks_cover_the_file_in_order_and_finish():
    u = started(2 * K + 5)
    sent = []
    while not u.finished:
        plan = u.prepare_chunk()
        sent.append((plan.start, plan.end, plan.content_range))
        if plan.final:
            u.process_chunk(200, {}, {"id": "f1", "md5Checksum": "m"})
        else:
            u.process_chunk(308, {"Range": f"bytes=0-{plan.end - 1}"})
    assert sent == [(0, K, f"bytes 0-{K - 1}/{2 * K + 5}"), (K, 2 * K, f"bytes {K}-{2 * K - 1}/{2 * K + 5}"),
                    (2 * K, 2 * K + 5, f"bytes {2 * K}-{2 * K + 4}/{2 * K + 5}")]
    assert u.state == FINISHED and u.result["id"] == "f1"
    assert all((e - s) % K == 0 for s, e, _ in sent[:-1])


def test_resends_from_the_servers_range_not_our_count():
    u = started(4 * K, chunk=2 * K)
    plan = u.prepare_chunk()
    u.process_chunk(308, {"Range": f"bytes=0-{K - 1}"})     # Drive kept only half of the chunk
    assert u.offset == K
    plan = u.prepare_chunk()
    assert (plan.start, plan.end) == (K, 3 * K)


def test_308_without_range_means_nothing_stored():
    u = started(2 * K)
    u.prepare_chunk()
    u.process_chunk(308, {})
    assert u.offset == 0 and u.state == ACTIVE


@pytest.mark.parametrize("status,headers", [
    (308, {"Range": f"bytes=0-{3 * K}"}),       # more committed than sent
    (308, {"Range": "bytes=5-10"}),              # does not start at 0
    (500, {}),                                   # transport gave this back: not part of the protocol
    (200, {}),                                   # finished before the last byte
])
def test_answers_that_do_not_fit_make_it_invalid(status, headers):
    u = started(4 * K)
    u.prepare_chunk()
    u.process_chunk(status, headers, {})
    assert u.state == INVALID
    with pytest.raises(ProtocolError):
        u.prepare_chunk()


def test_recover_is_the_only_way_out_of_invalid():
    u = started(4 * K)
    u.prepare_chunk()
    u.fail("connection reset")
    assert u.invalid
    with pytest.raises(ProtocolError):
        u.prepare_chunk()
    q = u.prepare_recover()
    assert q.content_range == f"bytes */{4 * K}" and q.length == 0
    u.process_recover(308, {"Range": f"bytes=0-{2 * K - 1}"})
    assert u.state == ACTIVE and u.offset == 2 * K
    assert u.prepare_chunk().start == 2 * K


def test_recover_when_drive_already_has_everything():
    u = started(2 * K)
    u.prepare_chunk()
    u.fail("response lost")
    u.prepare_recover()
    u.process_recover(200, {}, {"id": "done"})
    assert u.finished and u.result == {"id": "done"}


@pytest.mark.parametrize("status", [404, 410])
def test_expired_session_cannot_be_recovered(status):
    u = started(2 * K)
    u.prepare_chunk()
    u.fail("404")
    u.prepare_recover()
    with pytest.raises(SessionExpired):
        u.process_recover(status, {})
    assert u.session_uri is None


def test_recover_not_allowed_when_active_or_fresh():
    with pytest.raises(ProtocolError):
        started(K).prepare_recover()
    with pytest.raises(ProtocolError):
        ResumableUpload(K, K).prepare_recover()


def test_restored_session_starts_invalid_and_asks_first():
    u = ResumableUpload(8 * K, 2 * K, session_uri="http://x/s")
    assert u.state == INVALID
    with pytest.raises(ProtocolError):
        u.prepare_chunk()
    u.prepare_recover()
    u.process_recover(308, {"Range": f"bytes=0-{6 * K - 1}"})
    plan = u.prepare_chunk()
    assert (plan.start, plan.end, plan.final) == (6 * K, 8 * K, True)


def test_all_bytes_committed_without_a_file_goes_to_recover():
    u = started(K)
    u.prepare_chunk()
    u.process_chunk(308, {"Range": f"bytes=0-{K - 1}"})
    assert u.invalid
    u.prepare_recover()
    u.process_recover(201, {}, {"id": "f"})
    assert u.finished


def test_initiate_needs_a_location():
    u = ResumableUpload(K, K)
    with pytest.raises(ProtocolError):
        u.process_initiate(200, {})
    assert u.invalid


def test_two_chunks_in_flight_refused():
    u = started(4 * K)
    u.prepare_chunk()
    with pytest.raises(ProtocolError):
        u.prepare_chunk()


def test_chunk_size_must_be_granular():
    with pytest.raises(ValueError):
        ResumableUpload(10, 1000)


def test_parse_range():
    assert parse_range(None) == 0
    assert parse_range("bytes=0-0") == 1
    assert parse_range("bytes=0-262143") == K
    with pytest.raises(ProtocolError):
        parse_range("bytes 0-1/2")


def test_plan_content_range_matches_protocol():
    assert ChunkPlan(0, 10, 10).content_range == "bytes 0-9/10"
    assert ChunkPlan(10, 10, 10).content_range == "bytes */10"
