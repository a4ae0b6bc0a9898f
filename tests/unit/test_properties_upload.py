"""upload.py's sans-I/O ResumableUpload against a model of Drive's side of the protocol, as a hypothesis
state machine: Drive commits what it likes of each chunk (whole 256 KiB units, or everything), answers
oddly, loses connections, forgets sessions; the client must always resume from what Drive says it has,
finish only when Drive holds every byte, and go invalid (never guess) on an answer that does not fit.

The model: ``committed`` is what Drive holds; ``done`` whether Drive has made the file. Invariants after
every step: in ``active`` the client's offset is exactly ``committed``; the client never believes in more
bytes than Drive holds; ``finished`` only when Drive has the whole file and returned it.
"""
from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from drivesync.upload import (ACTIVE, FINISHED, INITIAL, INVALID, ProtocolError, ResumableUpload, SessionExpired)

K = 256 * 1024


def range_header(committed: int) -> dict:
    return {"Range": f"bytes=0-{committed - 1}"} if committed else {}


class DriveModel(RuleBasedStateMachine):
    @initialize(total=st.one_of(st.just(0), st.integers(1, 6 * K), st.sampled_from([K, 2 * K, 3 * K])),
                chunk_units=st.integers(1, 3), restored=st.booleans(), data=st.data())
    def start(self, total, chunk_units, restored, data):
        self.total, self.chunk = total, chunk_units * K
        self.done = False
        if restored:  # a session from the journal: Drive already holds some whole units of it
            self.committed = data.draw(st.integers(0, total // K), label="units Drive holds") * K
            self.u = ResumableUpload(total, self.chunk, session_uri="https://drive/upload?upload_id=old")
            self.session = True
        else:
            self.committed = 0
            self.u = ResumableUpload(total, self.chunk)
            self.session = False

    # -- opening ---------------------------------------------------------------------------------

    @precondition(lambda self: self.u.state == INITIAL)
    @rule(answer=st.sampled_from([(200, True), (200, False), (503, True), (403, False), (308, True)]))
    def initiate(self, answer):
        status, location = answer
        headers = {"Location": "https://drive/upload?upload_id=new"} if location else {}
        if (status, location) == (200, True):
            self.u.process_initiate(status, headers)
            self.session, self.committed = True, 0
            assert self.u.state == ACTIVE and self.u.offset == 0
        else:  # no session to resume: the driver starts over, which the model leaves to the next example
            with pytest.raises(ProtocolError):
                self.u.process_initiate(status, headers)
            assert self.u.state == INVALID and not self.u.session_uri

    # -- one chunk, and what Drive does with it ----------------------------------------------------

    @precondition(lambda self: self.u.state == ACTIVE)
    @rule(answer=st.sampled_from(["all", "part", "lost", "lost-after-commit", "500", "early-200",
                                  "range-beyond", "range-not-from-0", "all-but-no-file"]),
          data=st.data())
    def send_chunk(self, answer, data):
        plan = self.u.prepare_chunk()
        # What goes out: from Drive's committed offset, at most one chunk, whole units unless it ends the file.
        assert plan.start == self.committed == self.u.offset
        assert plan.end == min(plan.start + self.chunk, self.total) and plan.total == self.total
        assert plan.final == (plan.end == self.total)
        assert plan.final or plan.length % K == 0
        assert plan.content_range == (f"bytes {plan.start}-{plan.end - 1}/{self.total}" if plan.length
                                      else f"bytes */{self.total}")
        with pytest.raises(ProtocolError):
            self.u.prepare_chunk()                                # one chunk in flight at a time

        if answer == "all":
            self.committed = plan.end
            if plan.final:
                self.done = True
                self.u.process_chunk(200, {}, {"id": "f", "size": str(self.total)})
                assert self.u.state == FINISHED and self.u.result["id"] == "f"
            else:
                self.u.process_chunk(308, range_header(self.committed))
                assert self.u.state == ACTIVE
        elif answer == "part":
            keep = data.draw(st.integers(0, max(0, (plan.length - 1) // K)), label="units kept") * K
            self.committed = plan.start + keep
            self.u.process_chunk(308, range_header(self.committed))
            self.expect_after_308(plan)
        elif answer in ("lost", "lost-after-commit"):
            if answer == "lost-after-commit":      # the bytes arrived, the answer did not
                self.committed = plan.end
                self.done = plan.final
            self.u.fail("connection reset")
            assert self.u.state == INVALID
        elif answer == "500":
            self.u.process_chunk(500, {})
            assert self.u.state == INVALID
        elif answer == "early-200":
            if plan.final:  # (no "early" for the last chunk: Drive keeps none of it instead)
                self.u.process_chunk(308, range_header(self.committed))
                self.expect_after_308(plan)
                return
            self.u.process_chunk(200, {}, {"id": "f"})
            assert self.u.state == INVALID                        # finished before its last byte: not believed
        elif answer == "range-beyond":
            self.u.process_chunk(308, {"Range": f"bytes=0-{plan.end}"})
            assert self.u.state == INVALID
        elif answer == "range-not-from-0":
            self.u.process_chunk(308, {"Range": f"bytes=5-{max(5, plan.end - 1)}"})
            assert self.u.state == INVALID
        elif answer == "all-but-no-file":
            self.committed = plan.end
            if not plan.final:
                self.u.process_chunk(308, range_header(self.committed))
                return
            self.done = True
            self.u.process_chunk(308, range_header(self.total))   # every byte stored, file not returned
            assert self.u.state == INVALID

    def expect_after_308(self, plan):
        if plan.final and self.committed == self.total:
            assert self.u.state == INVALID       # all stored (an empty file: nothing to store) but no file back
        else:
            assert self.u.state == ACTIVE and self.u.offset == self.committed

    # -- recovery --------------------------------------------------------------------------------

    @precondition(lambda self: self.u.state == INVALID and self.u.session_uri)
    @rule()
    def recover(self):
        plan = self.u.prepare_recover()
        assert plan.length == 0 and plan.content_range == f"bytes */{self.total}"
        if not self.session:
            with pytest.raises(SessionExpired):
                self.u.process_recover(404, {})
            assert self.u.session_uri is None
            # the driver starts over with a new session: Drive's old bytes are gone
            self.u = ResumableUpload(self.total, self.chunk)
            self.committed, self.done = 0, False
            return
        if self.done:
            self.u.process_recover(200, {}, {"id": "f"})
            assert self.u.state == FINISHED
        else:
            self.u.process_recover(308, range_header(self.committed))
            assert self.u.state == ACTIVE and self.u.offset == self.committed

    @precondition(lambda self: self.session and not self.done)
    @rule()
    def drive_forgets_the_session(self):
        self.session = False

    @precondition(lambda self: self.u.state != ACTIVE)
    @rule()
    def a_chunk_outside_active_is_refused(self):
        before = (self.u.state, self.u.offset)
        with pytest.raises(ProtocolError):
            self.u.prepare_chunk()
        assert (self.u.state, self.u.offset) == before

    @precondition(lambda self: self.u.state not in (INVALID,))
    @rule()
    def a_status_query_outside_invalid_is_refused(self):
        with pytest.raises(ProtocolError):
            self.u.prepare_recover()

    # -- what must always hold ---------------------------------------------------------------------

    @invariant()
    def never_ahead_of_drive(self):
        assert 0 <= self.u.offset <= self.total
        assert self.u.offset <= self.committed or self.u.state == INITIAL
        if self.u.state == ACTIVE:
            assert self.u.offset == self.committed and self.u.session_uri

    @invariant()
    def finished_only_with_every_byte_on_drive(self):
        if self.u.state == FINISHED:
            assert self.done and self.committed == self.total and self.u.offset == self.total
            assert self.u.result is not None


DriveModel.TestCase.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
TestResumableUploadAgainstDrive = DriveModel.TestCase
