"""The carrier interface (telephony/): one status map per carrier and how each consumer reads it, the webhook
signature policy, and the contract between the URLs the dialer hands a carrier and the voice server's routes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from backend.campaigns.outcomes import attempt_outcome
from core.call_events import CarrierCredentials
from telephony.base import CallOutcome, NonceCache, SignatureResult
from telephony.registry import CARRIERS
from telephony.twilio import twilio_signature
from telephony.vobiz import vobiz_signature_v3
from voice_server.routes.carriers import UNANSWERED_REASONS, router


@pytest.mark.parametrize(("form", "outcome", "end_reason", "attempt"), [
    ({"HangupCause": "CALL_REJECTED"}, CallOutcome.REJECTED, "rejected", "busy"),
    ({"HangupCause": "USER_BUSY"}, CallOutcome.BUSY, "busy", "busy"),
    ({"HangupCause": "NO_USER_RESPONSE"}, CallOutcome.NO_ANSWER, "no_answer", "no_answer"),
    ({"HangupCause": "ORIGINATOR_CANCEL"}, CallOutcome.CANCELED, "canceled", "canceled"),
    ({"HangupCause": "NORMAL_CLEARING", "Duration": "30"}, CallOutcome.COMPLETED, "caller_hangup", "completed"),
    ({"HangupCause": "MACHINE_DETECTED"}, CallOutcome.MACHINE, "voicemail", "voicemail"),
])
def test_one_vobiz_status_map_read_by_the_voice_server_and_the_dialer(
        form: dict[str, str], outcome: CallOutcome, end_reason: str, attempt: str) -> None:
    update = CARRIERS["vobiz"].parse_status({"Event": "Hangup", "CallUUID": "u1", **form})
    assert update is not None and update.outcome is outcome
    assert UNANSWERED_REASONS[outcome] == end_reason
    assert attempt_outcome(update, None) == attempt


def test_a_status_callback_without_the_call_id_is_refused() -> None:
    for carrier in CARRIERS.values():
        assert carrier.parse_status({"CallStatus": "completed"}) is None
        assert carrier.parse_answer({}, "US") is None


def test_signature_policy() -> None:
    url = "https://voice.example.com/x"
    twilio, vobiz = CARRIERS["twilio"], CARRIERS["vobiz"]
    tw = CarrierCredentials(carrier="twilio", account_id="AC1", auth_token="tw-token")
    vb = CarrierCredentials(carrier="vobiz", account_id="MA1", auth_token="vb-token")
    form = {"CallSid": "CA1"}
    # No credentials of this carrier to check against: refused (fail closed), whatever the operator allows.
    for carrier in (twilio, vobiz):
        for creds in (None, tw if carrier is vobiz else vb):
            assert carrier.webhook_authentic(creds, url, "POST", form, {}, None) is SignatureResult.MISSING
            assert carrier.webhook_authentic(creds, url, "POST", form, {}, None, require_signature=False) \
                is SignatureResult.MISSING
    # A missing signature is refused; only Vobiz's may be allowed, by the operator (local development).
    assert twilio.webhook_authentic(tw, url, "POST", form, {}, None, require_signature=False) is SignatureResult.MISSING
    assert vobiz.webhook_authentic(vb, url, "POST", form, {}, None) is SignatureResult.MISSING
    assert vobiz.webhook_authentic(vb, url, "POST", form, {}, None, require_signature=False) is SignatureResult.VALID
    good = {"x-twilio-signature": twilio_signature("tw-token", url, form)}
    assert twilio.webhook_authentic(tw, url, "POST", form, good, None) is SignatureResult.VALID
    assert twilio.webhook_authentic(tw, url, "POST", {**form, "To": "+1"}, good, None) is SignatureResult.INVALID
    signed = {"x-vobiz-signature-v3": vobiz_signature_v3("vb-token", url, "n1"), "x-vobiz-signature-v3-nonce": "n1"}
    nonces = NonceCache()
    assert vobiz.webhook_authentic(vb, url, "POST", form, signed, nonces) is SignatureResult.VALID
    assert vobiz.webhook_authentic(vb, url, "POST", form, signed, nonces) is SignatureResult.REPLAYED


def test_the_urls_the_dialer_hands_out_are_voice_server_routes() -> None:
    app = FastAPI()
    app.include_router(router)
    paths = set(app.openapi()["paths"])
    for carrier in CARRIERS.values():
        answer = carrier.answer_url("https://voice.example.com", "call-1")
        assert answer.startswith("https://voice.example.com/") and answer.endswith("?call_id=call-1")
        assert answer.removeprefix("https://voice.example.com").split("?")[0] in paths
        for part in ("stream-status", carrier.status_path):
            assert carrier.path("", part) in paths
