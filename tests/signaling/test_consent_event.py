"""A consent recorded on a case is told to the room at once; observers hear the states, not
who consented."""

from __future__ import annotations

from tests.api.test_consents import SIGNED_BY_PATIENT, case_id, consents_url


async def test_the_room_hears_a_recorded_consent(room, client, world):
    host = await room.joined("BM")
    observer = await room.admitted(host, "HYE", "observer")
    case = await case_id(client, world)
    r = await client.post(consents_url(world, case), json=SIGNED_BY_PATIENT,
                          headers=world.auth("NDI"))
    assert r.status == 201, await r.text()
    for peer in (host, observer):
        event = await peer.wait("consent:updated")
        assert event["case_id"] == case
        assert event["teleconsultation"] == {"status": "granted", "latest": None}
        assert event["recording"]["status"] == "none" and event["history"] == []
        assert "can_record" not in event
