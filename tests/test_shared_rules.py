"""The shared pieces the sweeps and the staff services call: claims.claim_rows (the claim
step of relay, webhook deliveries and calendar syncs), bookable_access.load_owned and
actors.require_staff (a provider's own rows; an admin's: everyone's)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from booking_app import db
from booking_app.models import CalendarSubscription
from booking_app.services import calendar_sync, claims
from booking_app.services.actors import Actor, require_staff
from booking_app.services.bookable_access import load_owned
from booking_app.services.errors import Forbidden, NotFound
from tests.factories import actor_for, make_admin, make_customer, make_provider

S = CalendarSubscription


def _subscriptions(provider, n: int) -> list[int]:
    return [calendar_sync.add(actor=actor_for(provider), url=f"https://93.184.216.34/{i}.ics", sync=False)["id"]
            for i in range(n)]


def _due(now: dt.datetime):
    return (S.claimed_until.is_(None)) | (S.claimed_until < now)  # type: ignore[union-attr, operator]


def test_claim_rows_sets_the_values_returns_the_columns_and_rechecks_due(db_url):
    ids = _subscriptions(make_provider(), 3)
    now = calendar_sync.utcnow()
    lease = now + dt.timedelta(minutes=5)
    with db.unit_of_work() as s:
        rows = claims.claim_rows(s, S, _due(now), order_by=(S.id,), limit=2, values={"claimed_until": lease},
                                 returning=(S.id, S.url), pick_only=S.id != ids[0])
    assert [r[0] for r in rows] == ids[1:]  # `pick_only` narrowed the pick, `limit` and order kept
    assert rows[0][1].endswith("/1.ics")
    with db.read_session() as s:
        assert {i: s.get(S, i).claimed_until is not None for i in ids} == {ids[0]: False, ids[1]: True, ids[2]: True}
    with db.unit_of_work() as s:  # claimed rows are no longer due: only the first is left
        again = claims.claim_rows(s, S, _due(now), order_by=(S.id,), limit=10, values={"claimed_until": lease},
                                  returning=(S.id,))
    assert [r[0] for r in again] == [ids[0]]
    with db.unit_of_work() as s:
        assert claims.claim_rows(s, S, _due(now), order_by=(S.id,), limit=10, values={"claimed_until": lease},
                                 returning=(S.id,)) == []


def test_concurrent_claim_rows_never_hand_one_row_to_two_claimers(db_url):
    ids = set(_subscriptions(make_provider(), 8))
    now = calendar_sync.utcnow()
    lease = now + dt.timedelta(minutes=5)
    barrier = threading.Barrier(4)
    got: list[list[int]] = []

    def run() -> None:
        barrier.wait()
        with db.unit_of_work() as s:
            got.append([r[0] for r in claims.claim_rows(s, S, _due(now), order_by=(S.id,), limit=3,
                                                         values={"claimed_until": lease}, returning=(S.id,))])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for part in got for i in part]
    assert len(claimed) == len(set(claimed))  # nobody got a row another one got
    assert set(claimed) <= ids and len(claimed) >= 3


def test_load_owned_is_for_the_owner_and_admins_only(db_url):
    owner, other, admin = make_provider(), make_provider(), make_admin()
    (sid,) = _subscriptions(owner, 1)
    with db.unit_of_work() as s:
        assert load_owned(s, S, sid, actor_for(owner), owner="owner_id", not_found="gone", lock=True).id == sid
        assert load_owned(s, S, sid, actor_for(admin), owner="owner_id", not_found="gone").id == sid
        for actor, row_id in ((actor_for(other), sid), (actor_for(owner), True), (actor_for(owner), str(sid)),
                              (actor_for(owner), sid + 1000), (Actor.guest(), sid)):
            with pytest.raises(NotFound) as caught:
                load_owned(s, S, row_id, actor, owner="owner_id", not_found="gone")
            assert caught.value.message == "gone"  # the same answer whether it exists or not


def test_require_staff_lets_providers_and_admins_through(db_url):
    provider, admin = make_provider(), make_admin()
    assert require_staff(actor_for(provider)) == provider.id
    assert require_staff(actor_for(admin)) == admin.id
    for actor in (actor_for(make_customer()), Actor.guest(), Actor.system()):
        with pytest.raises(Forbidden) as caught:
            require_staff(actor, "Staff only.")
        assert caught.value.message == "Staff only."
