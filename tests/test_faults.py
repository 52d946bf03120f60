"""Database faults under load: two API processes (`uvicorn booking_app.api:api`) book through a
PostgreSQL cluster of this module's own (initdb/pg_ctl), which the tests restart, and stop for
12 s (longer than any request may take), while clients keep booking and the job sweeps keep relaying messages.

What must hold (issue 27, point 1):
- clients see 201 or 503 + Retry-After (problem+json) — never another 5xx, never a hang;
- both processes' pools recover by themselves within seconds once the server is back;
- every acknowledged (201) booking is in the database once; clients that retry with their
  Idempotency-Key get the same booking back (a commit whose answer was lost is replayed);
- the sweeps resume: every message (confirmations, and reminders falling due during the fault)
  is sent, each once;
- `/api/ready` answers 503 while the database is away and 200 again after.
The figures (201/503/other, recovery time) are printed for the operations guide.
"""
from __future__ import annotations

import collections
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from booking_app.services.relay import LEASE_SECONDS
from tests.conftest import ThrowawayCluster, free_port, point_app_at
from tests.test_scaleout import CONSOLE_EMAIL_LINE, ApiProcess, api_pair, guest_body, sql

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_CLIENTS = 6
#: no single request may take longer than this (lock timeout 3 s + connect timeout 5 s + slack)
REQUEST_BOUND_SECONDS = 10.0
#: both processes must book again within this many seconds of the server being back
RECOVERY_BOUND_SECONDS = 10.0
#: the outage outlasts REQUEST_BOUND_SECONDS (a request hanging until the server is back fails the
#: bound) and the 0–9 s spread of the reminders made due as it begins (each falls due during it)
OUTAGE_SECONDS = REQUEST_BOUND_SECONDS + 2


def _migrate(url: str) -> None:
    """Every head (while several revisions are in flight, the chain may fork for a while)."""
    from alembic import command

    from booking_app import cli

    point_app_at(url)
    cfg = cli.alembic_config()
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "heads")


@pytest.fixture(scope="module")
def cluster():
    """A PostgreSQL cluster of this module's own (never the shared server: it is stopped and
    started here), with one migrated database; removed at the end."""
    c = ThrowawayCluster()
    if c.bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl) on this machine")
    try:
        server = c.start()
        assert server is not None
        from sqlalchemy.engine import make_url

        from tests.conftest import _admin_exec

        _admin_exec(server, 'CREATE DATABASE "booking_faults"')
        url = make_url(server).set(database="booking_faults").render_as_string(hide_password=False)
        _migrate(url)
        yield c, url
    finally:
        from booking_app import db

        db.dispose_engines()
        c.stop()


@pytest.fixture(scope="module")
def fault_pair(cluster, tmp_path_factory):
    _cluster, url = cluster
    workdir = tmp_path_factory.mktemp("faults")
    env = {"DATABASE_URL": url, "JOBS_ENABLED": "true", "RATE_LIMITS_ENABLED": "false",
           "OUTBOX_INTERVAL_SECONDS": "0.5", "DB_LOCK_TIMEOUT_MS": "3000", "DB_POOL_TIMEOUT": "3",
           "DB_CONNECT_TIMEOUT_SECONDS": "3", "GUEST_MAX_HOLDS_PER_IP": "100000"}
    with api_pair(workdir, env) as procs:
        yield procs


@dataclass
class Seen:
    """One HTTP answer (or transport error) a client saw."""
    key: str
    proc: str
    sent: float
    elapsed: float
    status: int | str
    retry_after: str | None = None
    problem: bool = False
    booking_id: int | None = None
    detail: str = ""


@dataclass
class Run:
    seen: list[Seen] = field(default_factory=list)
    ready: list[tuple[float, str, int]] = field(default_factory=list)  # (time, process, status)
    final: dict[str, Seen] = field(default_factory=dict)  # key -> last answer
    down_at: float = 0.0
    starting_at: float = 0.0  # the server was told to start again (it may answer before back_at)
    back_at: float = 0.0


def _load_through_fault(pair: list[ApiProcess], event_id: int, start, fault, *, after: float = 4.0) -> Run:
    """N_CLIENTS clients book (each request under a fresh key, retried under that key until a
    201 or 409, honouring Retry-After) through both processes while `fault()` runs; a probe
    polls /api/ready. Load starts 1.5 s before the fault and ends `after` s after it. `fault()`
    may return when it told the server to start again (readiness may turn 200 from then on)."""
    run = Run()
    lock = threading.Lock()
    stop = threading.Event()
    run_id = uuid.uuid4().hex[:8]

    def client(i: int) -> None:
        with httpx.Client(timeout=30) as c:
            k = 0
            while not stop.is_set():
                key = f"fault-{run_id}-{i}-{k}"
                body = guest_body(event_id, start, f"{run_id}-{i}-{k}")
                k += 1
                deadline = time.monotonic() + 60
                tries = 0
                while time.monotonic() < deadline:
                    proc = pair[(i + tries) % 2]  # a retry may land on the other process
                    tries += 1
                    t0 = time.monotonic()
                    try:
                        r = c.post(f"{proc.base}/api/bookings", json=body, headers={"Idempotency-Key": key})
                    except httpx.TransportError as exc:
                        s = Seen(key, proc.name, t0, time.monotonic() - t0, type(exc).__name__)
                        with lock:
                            run.seen.append(s)
                        time.sleep(0.5)
                        continue
                    s = Seen(key, proc.name, t0, time.monotonic() - t0, r.status_code, r.headers.get("retry-after"),
                             r.headers.get("content-type", "").startswith("application/problem+json"),
                             r.json().get("id") if r.status_code == 201 else None,
                             "" if r.status_code == 201 else r.text[:300])
                    with lock:
                        run.seen.append(s)
                        run.final[key] = s
                    if r.status_code == 503:
                        time.sleep(min(float(r.headers.get("retry-after") or 1), 2.0))
                        continue
                    break

    def probe() -> None:
        with httpx.Client(timeout=5) as c:
            while not stop.is_set():
                for p in pair:
                    try:
                        status = c.get(f"{p.base}/api/ready").status_code
                    except httpx.TransportError:
                        status = 0
                    with lock:
                        run.ready.append((time.monotonic(), p.name, status))
                time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(N_CLIENTS)]
    threads.append(threading.Thread(target=probe, daemon=True))
    for t in threads:
        t.start()
    time.sleep(1.5)
    run.down_at = time.monotonic()
    started = fault()
    run.back_at = time.monotonic()
    run.starting_at = started or run.back_at
    time.sleep(after)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return run


def _check(run: Run, url: str, event_id: int, label: str, capsys, *, outage: bool) -> dict:
    statuses = collections.Counter(s.status for s in run.seen)
    other = {k: v for k, v in statuses.items() if k not in (201, 503)}
    assert not other, f"answers other than 201/503: {other}: {[x.detail for x in run.seen if x.status in other][:3]}"
    bad_503 = [s for s in run.seen if s.status == 503 and not (s.retry_after and s.problem)]
    assert not bad_503, f"503 without Retry-After or problem+json: {bad_503[:3]}"
    slow = [s for s in run.seen if s.elapsed > REQUEST_BOUND_SECONDS]
    assert not slow, f"requests that hung past {REQUEST_BOUND_SECONDS} s: {slow[:3]}"
    if outage:
        assert statuses[503] > 0, "the outage was not felt: the test proved nothing"

    # every key ended with a definite answer; the acknowledged ones are in the database once
    assert all(s.status == 201 for s in run.final.values()), \
        [s for s in run.final.values() if s.status != 201][:3]
    acked = {key: s.booking_id for key, s in run.final.items()}
    per_key = collections.defaultdict(set)
    for s in run.seen:
        if s.status == 201:
            per_key[s.key].add(s.booking_id)
    assert all(len(ids) == 1 for ids in per_key.values()), "a retry with the same key got another booking"
    rows = sql(url, "SELECT b.id, r.key, b.guest_email FROM bookings b LEFT JOIN idempotency_records r "
                    "ON r.resource_id = b.id AND r.scope LIKE 'booking:%' WHERE b.bookable_id = :b "
                    "AND r.key LIKE 'fault-%'", b=event_id)
    mine = [r for r in rows if r[1] in acked]
    for column in (1, 2):  # one booking per key and per client request (its own guest email)
        counts = collections.Counter(r[column] for r in mine)
        assert all(c == 1 for c in counts.values()), [k for k, c in counts.items() if c > 1]
    assert {r[1]: r[0] for r in mine} == acked
    replayed = sum(1 for key, s in run.final.items()
                   if any(x.key == key and x.status != 201 for x in run.seen))

    # recovery: the first 201 each process gave to a request sent after the server was back
    recovery = {}
    for name in ("A", "B"):
        firsts = [s.sent + s.elapsed for s in run.seen if s.proc == name and s.status == 201 and s.sent >= run.back_at]
        assert firsts, f"process {name} booked nothing after the database was back"
        recovery[name] = min(firsts) - run.back_at
    assert max(recovery.values()) < RECOVERY_BOUND_SECONDS, recovery

    # readiness: 503 while away (the long outage), 200 again after, in both processes
    for name in ("A", "B"):
        during = [st for t, p, st in run.ready if p == name and run.down_at + 1 < t < run.starting_at]
        after = [st for t, p, st in run.ready if p == name and t > run.back_at]
        if outage:
            assert during and all(st == 503 for st in during), (name, collections.Counter(during))
        assert after and after[-1] == 200, (name, after[-5:])
    ready_back = {name: min((t for t, p, st in run.ready if p == name and t > run.back_at and st == 200),
                            default=float("nan")) - run.back_at for name in ("A", "B")}
    figures = {"requests": len(run.seen), "201": statuses[201], "503": statuses[503],
               "other": sum(other.values()), "bookings": len(acked), "retried_then_acked": replayed,
               "recovery_s": {k: round(v, 2) for k, v in recovery.items()},
               "ready_back_s": {k: round(v, 2) for k, v in ready_back.items()},
               "max_request_s": round(max(s.elapsed for s in run.seen), 2),
               "down_s": round(run.back_at - run.down_at, 1)}
    with capsys.disabled():
        print(f"\n[db fault: {label}] {figures}")
    return figures


def _wait_until_sent(url: str, *, held_too: bool, seconds: float = 30) -> int:
    """Wait until no message is due and unsent, none is being relayed right now (claimed within
    the last 5 s) and, if `held_too`, none is held by an older claim; → how many still are."""
    deadline = time.monotonic() + seconds
    while True:
        open_rows = sql(url, "SELECT count(*) FROM notifications WHERE (status = 'pending' AND next_attempt_at <= now()) "
                             "OR (status = 'sending' AND (:all OR claimed_until >= now() + make_interval(secs => :lease - 5)))",
                        all=held_too, lease=LEASE_SECONDS)[0][0]
        if open_rows == 0 or time.monotonic() > deadline:
            return open_rows
        time.sleep(0.25)


def _messages_after_fault(pair: list[ApiProcess], url: str, marks: dict[str, int], after_id: int, capsys,
                          label: str) -> None:
    """The sweeps resumed: every message (confirmations, and the reminders that fell due during
    the fault) is sent, each exactly once, and soon: a relay batch the fault interrupted waits
    for the database and goes on (the message handed to the transport just before is recorded,
    not sent again), so no row is left claimed to wait out its lease (LEASE_SECONDS)."""
    assert _wait_until_sent(url, held_too=False) == 0
    assert _wait_until_sent(url, held_too=True) == 0, \
        f"rows left waiting out their lease: {sql(url, 'SELECT id, template, attempts, claimed_until FROM notifications WHERE status = :s', s='sending')[:5]}"
    unsent = sql(url, "SELECT id, template, status, attempts, last_error FROM notifications "
                      "WHERE status NOT IN ('sent', 'cancelled')")
    assert not unsent, f"messages lost: {[tuple(r) for r in unsent][:5]}"
    expected = {to: n for to, n in sql(url, "SELECT \"to\", count(*) FROM notifications WHERE status = 'sent' "
                                            "AND id > :i GROUP BY \"to\"", i=after_id)}
    reminders = sql(url, "SELECT count(*) FROM notifications WHERE template = 'reminder' AND status = 'sent' "
                         "AND id > :i", i=after_id)[0][0]
    time.sleep(0.3)  # the last log lines reach the files
    sent: collections.Counter = collections.Counter()
    interrupted = 0
    for p in pair:
        text = p.log_text(marks[p.name])
        interrupted += text.count("job outbox_relay failed")
        for line in text.splitlines():
            if CONSOLE_EMAIL_LINE in line:
                sent[line.split(CONSOLE_EMAIL_LINE, 1)[1].split(" ", 1)[0]] += 1
    missing = {to: n - sent.get(to, 0) for to, n in expected.items() if sent.get(to, 0) < n}
    assert not missing, f"marked sent but never handed to the transport: {missing}"
    twice = {to: sent[to] - n for to, n in expected.items() if sent.get(to, 0) > n}
    waited = sum(p.log_text(marks[p.name]).count("waits for the database") for p in pair)
    with capsys.disabled():
        print(f"[db fault: {label}] {sum(expected.values())} messages sent ({reminders} reminders), none lost; "
              f"{interrupted} relay ticks failed, {waited} relay batches waited for the database, "
              f"{sum(twice.values())} sent twice")
    assert not twice, f"sent more than once: {twice}"


def _fault_test(fault_pair, cluster, capsys, fault, label: str, *, outage: bool) -> dict:
    from tests.factories import make_event, next_day_at

    _cluster, url = cluster
    point_app_at(url)
    # reminders of these bookings fall due during the fault: the sweeps must send each once
    start = next_day_at(11, days=1 + (3 if outage else 2))
    event, _ = make_event(sessions=[start], capacity=5000)
    marks = {p.name: p.log_size() for p in fault_pair}
    after_id = sql(url, "SELECT coalesce(max(id), 0) FROM notifications")[0][0]

    def fault_with_reminders_due() -> float | None:
        sql(url, "UPDATE notifications SET next_attempt_at = now() + (id % 10) * interval '1 second' "
                 "WHERE template = 'reminder' AND status = 'pending' RETURNING id")
        return fault()

    run = _load_through_fault(fault_pair, event.id, start, fault_with_reminders_due)
    from booking_app import db

    db.dispose_engines()  # this process's own pool saw the fault too
    figures = _check(run, url, event.id, label, capsys, outage=outage)
    # make the remaining reminders due now: every one queued by the bookings goes out once
    sql(url, "UPDATE notifications SET next_attempt_at = now() WHERE template = 'reminder' AND status = 'pending' "
             "RETURNING id")
    _messages_after_fault(fault_pair, url, marks, after_id, capsys, label)
    return figures


def test_postgres_restart_under_load(fault_pair, cluster, capsys):
    c, _url = cluster
    _fault_test(fault_pair, cluster, capsys, lambda: c.server("restart"), "restart", outage=False)


def test_postgres_refusing_connections_for_longer_than_any_request_may_take(fault_pair, cluster, capsys):
    c, _url = cluster

    def outage() -> float:
        c.server("stop")
        time.sleep(OUTAGE_SECONDS)
        starting = time.monotonic()
        c.server("start")
        return starting

    _fault_test(fault_pair, cluster, capsys, outage, f"down {OUTAGE_SECONDS:.0f} s", outage=True)


# --- in one process, on the shared test database: no server is stopped ----------------------------

def test_connections_the_server_dropped_cost_one_request_then_the_pool_heals(pg_db, monkeypatch):
    """Every pooled connection is killed by the server (as in a restart): the next request
    fails with 503 + Retry-After (problem+json, never a 500), and from then on every pooled
    connection is checked before use — the following requests all succeed, although the pool
    still held several dead connections."""
    from fastapi.testclient import TestClient

    from booking_app import db
    from booking_app.api import create_api
    from tests.factories import make_event, next_day_at

    monkeypatch.setenv("GUEST_MAX_HOLDS_PER_IP", "1000")
    point_app_at(pg_db)
    start = next_day_at(10, days=5)
    event, _ = make_event(sessions=[start], capacity=100)
    engine = db.get_engine()
    held = [engine.connect() for _ in range(4)]  # four connections in the pool, each used just now
    for conn in held:
        conn.exec_driver_sql("SELECT 1")
        conn.close()
    killed = sql(pg_db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert len(killed) >= 4
    statuses = []
    with TestClient(create_api(), raise_server_exceptions=False) as c:
        for i in range(6):
            r = c.post("/api/bookings", json=guest_body(event.id, start, f"drop-{i}"),
                       headers={"Idempotency-Key": f"drop-{i}"})
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert r.headers.get("retry-after") == "2", r.headers
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["status"] == 503
                r = c.post("/api/bookings", json=guest_body(event.id, start, f"drop-{i}"),
                           headers={"Idempotency-Key": f"drop-{i}"})  # the client retries
                assert r.status_code == 201, r.text
        assert c.get("/api/ready").status_code == 200
    assert statuses.count(503) <= 1, statuses
    assert statuses[1:] == [201] * 5, statuses
    assert sql(pg_db, "SELECT count(*) FROM bookings WHERE bookable_id = :b", b=event.id)[0][0] == 6


def test_ready_says_503_while_the_database_is_unreachable():
    """A database that can't be reached: /api/ready is 503 (with Retry-After); API routes
    answer 503 + Retry-After problem+json, not 500."""
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    free = free_port()
    point_app_at(f"postgresql+psycopg://postgres@127.0.0.1:{free}/nothing_here", DB_CONNECT_TIMEOUT_SECONDS="1")
    with TestClient(create_api(), raise_server_exceptions=False) as c:
        r = c.get("/api/ready")
        assert r.status_code == 503 and r.json()["database"] == "unreachable", r.text
        assert r.headers.get("retry-after")
        r = c.get("/api/services")
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers.get("retry-after") == "2"


# --- the outbox relay across a database outage, in one process (the outage is simulated) ------------

class _Recorder:
    """A transport that records what it was handed (no provider-side idempotency, like SMTP)."""
    name = "recording"

    def __init__(self, on_send=None) -> None:
        self.sent: list = []
        self.on_send = on_send

    def send(self, message) -> str:
        self.sent.append(message)
        if self.on_send is not None:
            self.on_send(len(self.sent))
        return f"rec-{len(self.sent)}"


def _queue_messages(n: int, prefix: str) -> None:
    from booking_app import db
    from booking_app.services import outbox

    with db.unit_of_work() as s:
        for i in range(n):
            outbox.enqueue(s, channel="email", to=f"{prefix}-{i}@example.com", template="password_reset",
                           locale="en", context={"username": "a", "reset_url": "http://x/r", "expires_minutes": 60},
                           dedupe_key=f"{prefix}-{i}")


def _unreachable() -> Exception:
    from sqlalchemy import exc as sa_exc

    return sa_exc.OperationalError("UPDATE notifications", None,
                                   Exception("server closed the connection unexpectedly"))


def test_a_message_sent_as_the_database_goes_away_is_recorded_once_it_is_back_not_sent_again(pg_db, monkeypatch):
    """The database goes away right after the transport took message 2 of a batch of 5: the
    relay waits for it (short backoff), records message 2 as sent, and goes on with the rest at
    once — every message sent once, none left waiting out its lease. (Before: the tick failed,
    message 2 went out again after the lease, and 3–5 waited 5 minutes.)"""
    import contextlib
    import datetime as dt

    from booking_app import db
    from booking_app.services import relay

    _queue_messages(5, "outage")
    real = db.unit_of_work
    down = {"left": 0, "refused": 0}

    @contextlib.contextmanager
    def flaky_unit_of_work(**kw):
        if down["left"] > 0:  # the server refuses connections for the next few attempts
            down["left"] -= 1
            down["refused"] += 1
            raise _unreachable()
        with real(**kw) as s:
            yield s

    def goes_away_after(count: int) -> None:
        if count == 2:
            down["left"] = 4

    monkeypatch.setattr(db, "unit_of_work", flaky_unit_of_work)
    email = _Recorder(on_send=goes_away_after)
    now = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    stats = relay.relay_once(now=now, email_sender=email, sms_sender=_Recorder())
    assert down["refused"] == 4 and time.monotonic() - t0 < 10
    assert stats.sent == 5 and stats.claimed == 5
    assert sorted(m.to for m in email.sent) == [f"outage-{i}@example.com" for i in range(5)]
    rows = sql(pg_db, "SELECT status, claimed_until FROM notifications WHERE dedupe_key LIKE 'outage-%'")
    assert [(r[0], r[1]) for r in rows] == [("sent", None)] * 5
    # long after every lease would have run out, nothing goes out again
    later = now + dt.timedelta(seconds=relay.LEASE_SECONDS + 1)
    assert relay.relay_once(now=later, email_sender=email, sms_sender=_Recorder()).claimed == 0
    assert len(email.sent) == 5


def test_a_claim_whose_commit_answer_was_lost_is_handed_back_not_left_to_its_lease(pg_db, monkeypatch):
    """The claim commits but the connection drops before its answer arrives: the relay can't
    know it holds the rows, so it hands them back once the database answers (the lease stamp
    identifies them); the next tick sends each once, instead of them waiting out the lease."""
    import contextlib
    import datetime as dt

    from sqlalchemy import exc as sa_exc

    from booking_app import db
    from booking_app.services import relay

    _queue_messages(3, "lost-claim")
    real = db.unit_of_work
    calls = {"n": 0}

    @contextlib.contextmanager
    def answer_lost_once(**kw):
        calls["n"] += 1
        with real(**kw) as s:
            yield s
        if calls["n"] == 1:  # committed; the answer never arrived
            raise _unreachable()

    monkeypatch.setattr(db, "unit_of_work", answer_lost_once)
    email = _Recorder()
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(sa_exc.OperationalError):
        relay.relay_once(now=now, email_sender=email, sms_sender=_Recorder())
    assert email.sent == []
    rows = sql(pg_db, "SELECT status, attempts, claimed_until FROM notifications WHERE dedupe_key LIKE 'lost-claim-%'")
    assert [tuple(r) for r in rows] == [("pending", 0, None)] * 3
    assert relay.relay_once(now=now, email_sender=email, sms_sender=_Recorder()).sent == 3
    assert len(email.sent) == 3


def test_the_relay_waits_for_the_database_a_bounded_time_then_leaves_the_batch_to_its_lease(pg_db, monkeypatch):
    """An outage longer than DB_WAIT_SECONDS: the relay gives up waiting (the tick fails, it
    never hangs) and the batch keeps its claim; once the lease runs out the messages are sent
    — the one handed to the transport just before is the one that may go out twice then
    (at-least-once is the fallback past the bound)."""
    import contextlib
    import datetime as dt

    from sqlalchemy import exc as sa_exc

    from booking_app import db
    from booking_app.services import relay

    monkeypatch.setattr(relay, "DB_WAIT_SECONDS", 0.5)
    _queue_messages(3, "long-outage")
    real = db.unit_of_work
    down = {"on": False}

    @contextlib.contextmanager
    def unreachable_while_down(**kw):
        if down["on"]:
            raise _unreachable()
        with real(**kw) as s:
            yield s

    monkeypatch.setattr(db, "unit_of_work", unreachable_while_down)
    email = _Recorder(on_send=lambda n: down.update(on=True) if n == 1 else None)
    now = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    with pytest.raises(sa_exc.OperationalError):
        relay.relay_once(now=now, email_sender=email, sms_sender=_Recorder())
    assert time.monotonic() - t0 < 3
    assert len(email.sent) == 1
    rows = sql(pg_db, "SELECT status FROM notifications WHERE dedupe_key LIKE 'long-outage-%'")
    assert [r[0] for r in rows] == ["sending"] * 3  # still claimed: nothing lost, nothing failed
    down["on"] = False
    assert relay.relay_once(now=now, email_sender=email, sms_sender=_Recorder()).claimed == 0
    later = now + dt.timedelta(seconds=relay.LEASE_SECONDS + 1)
    assert relay.relay_once(now=later, email_sender=email, sms_sender=_Recorder()).sent == 3
    assert sorted(m.to for m in email.sent) == sorted(
        ["long-outage-0@example.com"] + [f"long-outage-{i}@example.com" for i in range(3)])
