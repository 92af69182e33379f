"""Finding 4: unsigned carrier webhooks used to be answered, with a media token, whenever the number's organisation
had no credentials, when the number belonged to the other carrier, and for Vobiz whenever the signature was left
out. Now they fail closed. Against a real backend and voice server (processes); the attacker posts the carrier's
answer webhook itself."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from voice_stack import Line, call, provision, running_stack

from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.simulator import CarrierAccount


@pytest.fixture(scope="module")
def webhook_stack(data_services: dict[str, str], fake_carrier: FakeCarrier,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_stack(data_services, fake_carrier, tmp_path_factory.mktemp("sec-webhooks"), "sec-voice") as urls:
        yield urls


@pytest.fixture(scope="module")
async def lines(webhook_stack: tuple[str, str], fake_carrier: FakeCarrier, http: httpx.AsyncClient
                ) -> dict[str, Line]:
    backend_url, _ = webhook_stack
    return {c: await provision(http, backend_url, fake_carrier, c) for c in ("twilio", "vobiz")}


def streamed(resp: httpx.Response) -> bool:
    return resp.status_code == 200 and "<Stream" in resp.text


async def test_an_unsigned_answer_for_a_number_without_credentials_is_refused(
        webhook_stack: tuple[str, str], http: httpx.AsyncClient, lines: dict[str, Line]) -> None:
    _, voice_url = webhook_stack
    for carrier in ("twilio", "vobiz"):
        stranger = CarrierAccount(carrier, "AC" + "0" * 32, "not-the-token")  # type: ignore[arg-type]
        sim = call(lines[carrier], voice_url, http, account=stranger)
        sim.to_number = "+14155559876"  # a number nobody verified: no credentials to check against
        resp = await sim.post_answer(http, headers={})
        assert resp.status_code == 403, (carrier, resp.status_code, resp.text)


async def test_an_unsigned_vobiz_answer_is_refused_by_default(
        webhook_stack: tuple[str, str], http: httpx.AsyncClient, lines: dict[str, Line]) -> None:
    _, voice_url = webhook_stack
    resp = await call(lines["vobiz"], voice_url, http).post_answer(http, headers={})
    assert resp.status_code == 403 and not streamed(resp), resp.text


async def test_a_webhook_on_the_other_carriers_route_is_refused(
        webhook_stack: tuple[str, str], http: httpx.AsyncClient, lines: dict[str, Line]) -> None:
    _, voice_url = webhook_stack
    # The Twilio line's number announced as a Vobiz call, signed or not: the number's carrier is Twilio.
    for headers in ({}, None):
        sim = call(lines["twilio"], voice_url, http, via="vobiz")
        resp = await sim.post_answer(http, headers=headers)
        assert resp.status_code == 403 and not streamed(resp), resp.text


async def test_a_properly_signed_answer_still_streams(
        webhook_stack: tuple[str, str], http: httpx.AsyncClient, lines: dict[str, Line]) -> None:
    _, voice_url = webhook_stack
    for carrier in ("twilio", "vobiz"):
        resp = await call(lines[carrier], voice_url, http).post_answer(http)
        assert streamed(resp), (carrier, resp.text)
