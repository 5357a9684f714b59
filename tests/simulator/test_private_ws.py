"""Private WebSocket: JWT checks in the handshake (section 5) and private request rules."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import client, recv_json, request, token
from upbit_ws.simulator import Simulator

T = {"ticket": "priv"}


def _auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.mark.parametrize("algorithm", ["HS256", "HS512"])
async def test_hs256_and_hs512_accepted(sim: Simulator, algorithm: str) -> None:
    """Tokens signed HS256 or HS512 open the private socket (section 5 [CONFLICT])."""
    headers = _auth(token(*sim.credentials, algorithm=algorithm))
    async with client(sim.private_ws_url, additional_headers=headers) as ws:
        await ws.send(request(T, {"type": "myOrder"}, {"type": "myAsset"}))
        await ws.send(request(T, {"method": "LIST_SUBSCRIPTIONS"}))
        listed = await recv_json(ws)
        assert listed["result"] == [{"type": "myOrder", "codes": []}, {"type": "myAsset"}]
    assert sim.connections(include_closed=True)[-1].kind == "private"


def _unsigned(access_key: str) -> str:
    import base64

    import orjson

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

    return (
        f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'access_key': access_key, 'nonce': 'n1'})}."
    )


async def _refused(sim: Simulator, headers: dict[str, str]) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as info:
        async with client(sim.private_ws_url, additional_headers=headers):
            pass
    return info.value.response.status_code, info.value.response.body or b""


async def test_bad_tokens_refused_at_handshake(sim: Simulator) -> None:
    """alg none, bad signature, unknown key and no header get HTTP 401 with an error body."""
    access, secret = sim.credentials
    cases = {
        "none": _auth(_unsigned(access)),
        "bad signature": _auth(token(access, "wrong-secret-" + "x" * 60)),
        "unknown key": _auth(token("NOPE" * 10, secret)),
        "no header": {},
    }
    names = {}
    for label, headers in cases.items():
        status, body = await _refused(sim, headers)
        assert status == 401, label
        names[label] = body
    assert b"invalid_access_key" in names["unknown key"]
    assert b"jwt_verification" in names["bad signature"]
    assert sim.statistics().connections_refused["401"] == 4


async def test_nonce_reuse_refused(sim: Simulator) -> None:
    """A token whose nonce was already used is refused (nonce_used)."""
    headers = _auth(token(*sim.credentials, nonce="same-nonce"))
    async with client(sim.private_ws_url, additional_headers=headers):
        pass
    status, body = await _refused(sim, headers)
    assert status == 401 and b"nonce_used" in body


async def test_revoked_and_expired_keys_refused(sim: Simulator) -> None:
    """A revoked key is refused until restored; an expired key is refused (expired_access_key)."""
    sim.revoke_key()
    status, body = await _refused(sim, _auth(token(*sim.credentials)))
    assert status == 401 and b"invalid_access_key" in body
    sim.restore_key()
    async with client(sim.private_ws_url, additional_headers=_auth(token(*sim.credentials))):
        pass
    sim.expire_key(in_seconds=0)
    status, body = await _refused(sim, _auth(token(*sim.credentials)))
    assert status == 401 and b"expired_access_key" in body


async def test_frame_mode_sends_invalid_auth_then_closes(make_sim: MakeSim) -> None:
    """With auth_failure='frame' a bad token gets an INVALID_AUTH frame, then close 1000."""
    async with make_sim(auth_failure="frame") as sim:
        headers = _auth(token(sim.credentials[0], "wrong-secret-" + "x" * 60))
        async with client(sim.private_ws_url, additional_headers=headers) as ws:
            error = await recv_json(ws)
            assert error == {
                "error": {"name": "INVALID_AUTH", "message": "인증 정보가 올바르지 않습니다."}
            }
            await ws.wait_closed()
            assert ws.close_code == 1000


async def test_my_asset_with_codes_is_wrong_format(sim: Simulator) -> None:
    """myAsset takes no codes: sending some gets WRONG_FORMAT (DOC-myasset)."""
    async with client(sim.private_ws_url, additional_headers=_auth(token(*sim.credentials))) as ws:
        await ws.send(request(T, {"type": "myAsset", "codes": ["KRW-BTC"]}))
        error = await recv_json(ws)
        assert error["error"]["name"] == "WRONG_FORMAT"


async def test_public_type_on_private_path(make_sim: MakeSim) -> None:
    """ticker on /private is an unsupported type by default, or served when configured."""
    async with make_sim() as sim:
        headers = _auth(token(*sim.credentials))
        async with client(sim.private_ws_url, additional_headers=headers) as ws:
            await ws.send(request(T, {"type": "ticker", "codes": ["KRW-BTC"]}))
            assert (await recv_json(ws))["error"]["name"] == "INVALID_PARAM"
    async with make_sim(public_on_private="serve") as sim:
        headers = _auth(token(*sim.credentials))
        async with client(sim.private_ws_url, additional_headers=headers) as ws:
            await ws.send(request(T, {"type": "ticker", "codes": ["KRW-BTC"]}))
            assert (await recv_json(ws))["type"] == "ticker"
