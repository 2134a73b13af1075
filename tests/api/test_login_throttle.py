"""Password guessing is slowed, then stopped: per account (growing waits, then a lockout an
admin can lift) and per address (a larger budget, for a hospital's doctors behind one NAT),
answered alike for unknown accounts, audited; with Redis, every node sees the same counts."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from app.appkeys import LOGIN_THROTTLE
from app.auth.throttle import ACCOUNT, ADDRESS, Budget, LoginThrottle, RedisCounts
from tests.api.dbcheck import audit_events, error_of
from tests.conftest import DEMO_PASSWORD

DOCTOR = "doctor.ndi@demo.hoichan.vn"
# Small budgets, so a test reaches the lockout in a second rather than an hour.
QUICK = Budget(free=2, lock_at=4, first_delay_s=0.3, lockout_s=60)


async def login(client, email: str = DOCTOR, password: str = DEMO_PASSWORD):
    return await client.post("/api/auth/login", json={"email": email, "password": password})


def quick(client, account: Budget = QUICK, address: Budget = ADDRESS) -> LoginThrottle:
    throttle = client.app[LOGIN_THROTTLE]
    throttle.account, throttle.address = account, address
    return throttle


async def test_default_budgets_give_a_nat_of_typing_doctors_room():
    assert ACCOUNT.free >= 3 and ACCOUNT.wait(ACCOUNT.lock_at) == 900
    assert ADDRESS.free >= 10 * ACCOUNT.free and ADDRESS.lock_at >= 10 * ACCOUNT.lock_at
    waits = [ACCOUNT.wait(n) for n in range(ACCOUNT.lock_at + 1)]
    assert waits == sorted(waits) and waits[ACCOUNT.free] > 0


@pytest.mark.parametrize("email", [DOCTOR, "nobody@demo.hoichan.vn"])
async def test_guesses_wait_growing_then_the_account_locks(client, world, email):
    quick(client)
    answers = []
    for _ in range(QUICK.free):
        answers.append(await error_of(await login(client, email, "wrong-password"), 401))
    # Past the free failures, even the right password waits: guessing goes no faster.
    r = await login(client, email)
    too_soon = await error_of(r, 429, code="too_many_requests")
    assert r.headers["Retry-After"] == "1"  # 0.3 s, rounded up
    await asyncio.sleep(0.35)
    answers.append(await error_of(await login(client, email, "wrong-password"), 401))
    r = await login(client, email)
    assert r.status == 429 and int(r.headers["Retry-After"]) == 1  # 0.6 s, rounded up
    await asyncio.sleep(0.65)
    answers.append(await error_of(await login(client, email, "wrong-password"), 401))
    r = await login(client, email)  # the fourth failure locked it
    locked = await error_of(r, 429)
    assert 55 <= int(r.headers["Retry-After"]) <= 60
    # An unknown account is answered exactly as a known one.
    assert {a["message"] for a in answers} == {"wrong e-mail or password"}
    assert too_soon["message"].startswith("too many failed logins")
    assert locked["message"].startswith("too many failed logins")
    lockouts = await audit_events(world.settings, "auth.lockout")
    assert [(e.actor_email, e.outcome) for e in lockouts] == [(email, "failure")]
    refused = [e.detail["reason"] for e in await audit_events(world.settings, "auth.login")
               if e.detail.get("reason") in ("throttled", "locked")]
    assert refused == ["throttled", "throttled", "locked"]


async def test_an_admin_unlocks_an_account_and_a_success_clears_its_count(client, world):
    throttle = quick(client)
    for n in range(QUICK.lock_at):
        await throttle.failed(DOCTOR, "10.0.0.9")
        if n < QUICK.lock_at - 1:
            assert not await throttle.is_locked(DOCTOR)
    assert (await login(client)).status == 429
    user = world.user("NDI")
    await error_of(await client.post(f"/api/users/{user.id}/unlock",
                                     headers=world.auth("BM")), 403)
    assert (await login(client)).status == 429
    r = await client.post(f"/api/users/{user.id}/unlock", headers=world.auth("admin"))
    assert r.status == 204, await r.text()
    assert (await login(client)).status == 200
    (unlock,) = await audit_events(world.settings, "auth.unlock")
    assert unlock.object_id == str(user.id) and unlock.detail == {"was_locked": True}
    await error_of(await client.post("/api/users/999999/unlock",
                                     headers=world.auth("admin")), 404)
    # After a success the account starts again from nothing.
    await throttle.failed(DOCTOR, "10.0.0.9")
    assert (await login(client)).status == 200
    assert (await throttle.counts.get("account:" + DOCTOR)).count == 0


async def test_one_address_guessing_many_accounts_is_stopped(client, world):
    quick(client, account=ACCOUNT, address=Budget(free=5, lock_at=8, first_delay_s=30))
    for n in range(5):  # one guess each: no account reaches its own budget
        await error_of(await login(client, f"user{n}@example.vn", "wrong-password"), 401)
    r = await login(client)  # a real account, the right password, the same address
    await error_of(r, 429)
    assert 29 <= int(r.headers["Retry-After"]) <= 30


async def test_every_node_sees_the_same_counts_through_redis():
    prefix = f"hoichan-test-{secrets.token_hex(4)}"
    nodes = [LoginThrottle(RedisCounts("redis://127.0.0.1:6379/0", prefix), account=QUICK)
             for _ in range(2)]
    try:
        for _ in range(QUICK.free):
            await nodes[0].failed(DOCTOR, "10.0.0.9")
        refusal = await nodes[1].check(DOCTOR, "10.0.0.9")
        assert refusal is not None and not refusal.locked
        for _ in range(QUICK.lock_at - QUICK.free):
            await nodes[1].failed(DOCTOR.upper(), "10.0.0.9")  # the same account
        assert await nodes[0].is_locked(DOCTOR)
        failures = await nodes[0].counts.get("account:" + DOCTOR)
        assert failures.count == QUICK.lock_at and time.time() - failures.last < 5
        await nodes[1].unlock(DOCTOR)
        assert await nodes[0].check(DOCTOR, "10.0.0.8") is None
    finally:
        for node in nodes:
            await node.counts.clear("address:10.0.0.9")
            await node.counts.close()
