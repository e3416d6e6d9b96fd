"""The outbox worker on the builtin board: exactly one post, look-up before retry, back-off, visible failures."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bridge.db.models import BoardPost, Case, CaseEvent, CaseState, ForumOutbox, OutboxState
from bridge.forum.adapter import ForumError, ForumRejected
from bridge.forum.builtin.forum import BuiltinForum
from bridge.forum.outbox import OutboxWorker, backoff_delay, check_public
from tests.forum.test_builtin_support import PUBLIC_URL, file_case, read_case, run


def count(db, model, *where) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def outbox_row(db, number: str) -> ForumOutbox:
    with db.session(readonly=True) as session:
        row = session.scalar(select(ForumOutbox).where(ForumOutbox.idempotency_key == number))
        session.expunge(row)
        return row


def make_due(db, number: str) -> None:
    with db.session() as session:
        row = session.scalar(select(ForumOutbox).where(ForumOutbox.idempotency_key == number))
        row.next_attempt_at = datetime.now(timezone.utc) - timedelta(seconds=1)


class FlakyForum(BuiltinForum):
    """The builtin board, failing on demand: before storing the post, or after (the reply is lost)."""

    def __init__(self, db, *, down: bool = False, fail_after: int = 0):
        super().__init__(db, PUBLIC_URL)
        self.down = down
        self.fail_after = fail_after
        self.creates = 0
        self.finds = 0

    async def create_post(self, post):
        self.creates += 1
        if self.down:
            raise ForumError("connection refused")
        ref = await super().create_post(post)
        if self.fail_after:
            self.fail_after -= 1
            raise ForumError("timed out waiting for the forum's answer")
        return ref

    async def find_post(self, case_number):
        self.finds += 1
        if self.down:
            raise ForumError("connection refused")
        return await super().find_post(case_number)


def test_backoff_steps_and_the_last_repeats():
    steps = [30, 120, 600]
    assert [backoff_delay(n, steps).total_seconds() for n in (1, 2, 3, 4, 9)] == [30, 120, 600, 600, 600]


def test_a_filed_case_is_posted_once(client, people, worker, db):
    case = file_case(client, people)
    stats = run(worker.run_once())
    assert (stats.sent, stats.failed) == (1, 0)
    assert run(worker.run_once()).sent == 0  # nothing due any more
    after = read_case(client, people, case["number"])
    assert after["state"] == "posted"
    with db.session(readonly=True) as session:
        post = session.scalar(select(BoardPost))
        session.expunge(post)
        assert after["forum_url"] == f"{PUBLIC_URL}/board/threads/{post.id}"
        body = post.body + post.title
    row = outbox_row(db, case["number"])
    assert row.state is OutboxState.SENT and row.attempts == 1 and row.last_error is None
    assert row.remote_id == after["forum_url"].rsplit("/", 1)[1]
    assert after["deadline_at"] is not None
    assert [e["kind"] for e in after["timeline"]] == ["filed", "posted"]
    # What the post carries: surname + honorific, location, description, case number, the hotline.
    for public in ("朱女士", "柯城区府山街道", case["description"], case["number"], "96811"):
        assert public in body
    for private in ("朱小红", "13912345678", "139 1234 5678", "7654321", "工作日下午"):
        assert private not in body


def test_forum_down_then_back_posts_exactly_once(client, people, db, deadlines, live):
    """Down (refused before storing, twice), then a time-out after storing: one post, found by case number."""
    case = file_case(client, people)
    number = case["number"]
    flaky = FlakyForum(db, down=True)
    worker = OutboxWorker(db, flaky, backoff_s=[30, 120], deadlines=deadlines, live=live)

    async def failures():
        async with live.subscribe() as queue:
            await worker.run_once()
            return [queue.get_nowait() for _ in range(queue.qsize())]

    published = run(failures())
    assert [e.kind for e in published] == ["forum_post_failed"]
    row = outbox_row(db, number)
    assert row.state is OutboxState.PENDING and row.attempts == 1 and "connection refused" in row.last_error
    assert 25 <= (row.next_attempt_at - datetime.now(timezone.utc)).total_seconds() <= 31
    assert run(worker.run_once()).sent == 0  # not due before its back-off

    make_due(db, number)
    run(worker.run_once())  # find_post fails: still down
    row = outbox_row(db, number)
    assert row.attempts == 2 and 110 <= (row.next_attempt_at - datetime.now(timezone.utc)).total_seconds() <= 121
    assert flaky.creates == 1 and count(db, BoardPost) == 0

    # The forum is back but loses its answer after storing the post.
    flaky.down = False
    flaky.fail_after = 1
    make_due(db, number)
    run(worker.run_once())
    assert count(db, BoardPost) == 1
    row = outbox_row(db, number)
    assert row.state is OutboxState.PENDING and row.attempts == 3 and "timed out" in row.last_error
    assert read_case(client, people, number)["state"] == "queued"

    # Next attempt: looked up by case number first, found, not posted again.
    make_due(db, number)
    creates_before = flaky.creates
    assert run(worker.run_once()).sent == 1
    assert flaky.creates == creates_before and count(db, BoardPost) == 1
    row = outbox_row(db, number)
    assert row.state is OutboxState.SENT and row.attempts == 4 and row.last_error is None

    after = read_case(client, people, number)
    assert after["state"] == "posted" and after["forum_url"]
    failed = [e for e in after["timeline"] if e["kind"] == "forum_post_failed"]
    assert [e["detail"]["attempt"] for e in failed] == [1, 2, 3]
    assert "connection refused" in failed[0]["detail"]["error"] and "timed out" in failed[2]["detail"]["error"]
    assert [e["kind"] for e in after["timeline"]].count("posted") == 1


def test_filed_while_down_is_posted_when_back(client, people, db, deadlines, live):
    numbers = [file_case(client, people)["number"] for _ in range(3)]
    flaky = FlakyForum(db, down=True)
    worker = OutboxWorker(db, flaky, backoff_s=[1], deadlines=deadlines, live=live)
    run(worker.run_once())
    assert count(db, ForumOutbox, ForumOutbox.attempts == 1) == 3
    flaky.down = False
    for number in numbers:
        make_due(db, number)
    assert run(worker.run_once()).sent == 3
    assert count(db, BoardPost) == 3
    assert count(db, Case, Case.state == CaseState.POSTED) == 3


def test_a_rejected_post_is_given_up_and_shown(client, people, db, deadlines, live):
    class Refusing(BuiltinForum):
        async def create_post(self, post):
            raise ForumRejected("category does not exist")

    number = file_case(client, people)["number"]
    worker = OutboxWorker(db, Refusing(db, PUBLIC_URL), deadlines=deadlines, live=live)
    assert run(worker.run_once()).failed == 1
    row = outbox_row(db, number)
    assert row.state is OutboxState.FAILED and "category does not exist" in row.last_error
    [failed] = [e for e in read_case(client, people, number)["timeline"] if e["kind"] == "forum_post_failed"]
    assert failed["detail"]["gave_up"] is True
    make_due(db, number)
    assert run(worker.run_once()).failed == 0  # failed rows are not retried by themselves


def test_private_data_in_a_payload_is_never_sent(client, people, db, worker):
    number = file_case(client, people)["number"]
    with db.session() as session:
        row = session.scalar(select(ForumOutbox).where(ForumOutbox.idempotency_key == number))
        row.payload = {**row.payload, "body": row.payload["body"] + "\n联系电话 139-1234-5678"}
    assert run(worker.run_once()).failed == 1
    assert count(db, BoardPost) == 0
    assert outbox_row(db, number).state is OutboxState.FAILED


def test_check_public_finds_phones_and_full_name():
    case = Case(caller_surname="朱", caller_full_name="朱小红", caller_phone="+8613912345678",
                caller_phone_alt="+865707654321")
    check_public(case, "朱女士反映：路口垃圾。热线编号：96811-2026-000001")
    for bad in ("电话13912345678", "139 1234 5678", "0570-7654321", "朱小红反映"):
        try:
            check_public(case, bad)
        except ForumRejected:
            continue
        raise AssertionError(f"not caught: {bad}")


def test_failures_count_is_visible_to_supervisors(client, people, db, deadlines, live):
    number = file_case(client, people)["number"]
    worker = OutboxWorker(db, FlakyForum(db, down=True), deadlines=deadlines, live=live)
    run(worker.run_once())
    assert count(db, CaseEvent, CaseEvent.kind == "forum_post_failed") == 1
    from bridge.forum.outbox import outbox_counts

    with db.session(readonly=True) as session:
        assert outbox_counts(session) == {"pending": 1, "sent": 0, "failed": 0}
    assert outbox_row(db, number).attempts == 1
