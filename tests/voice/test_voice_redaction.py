"""PII redaction on a real call: the caller says a PIN and an email; the stored transcript (and so the webhooks and
analysis built from it) holds typed placeholders only, and with beep-over the caller's audio of that turn in the
stored recording is a 1 kHz tone."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from stack_helpers import synthesize
from voicetest_helpers import Simulate, ended_with_recording, read_stereo_wav, wait_for_call

from voice_server.answering import inbound_call_id
from voice_server.testing.simulator import CallerTurn, CallScript

pytestmark = pytest.mark.timeout(240)


async def test_caller_pii_is_redacted_and_beeped(simulate: Simulate, twilio_line_with,  # type: ignore[no-untyped-def]
                                                 http: httpx.AsyncClient, tts_url: str) -> None:
    line = await twilio_line_with(redaction={"enabled": True, "sensitive_digit_lengths": [4],
                                             "beep_recording": True})
    audio = synthesize(tts_url, "My pin is four seven one nine.")
    report = await simulate(line, CallScript(turns=[CallerTurn(audio=audio, label="pin")], hangup_after_s=1.0))
    call_id = inbound_call_id("twilio", report.carrier_call_id)
    call = await wait_for_call(http, line, call_id, ended_with_recording)
    caller = [t for t in call["turns"] if t["speaker"] == "caller"]
    assert caller, call["turns"]
    said = " ".join(t["text"] for t in caller)
    # Whatever the recogniser wrote (digits or words), the PIN is gone and its placeholder is there.
    assert "[sensitive digits]" in said, said
    assert "4719" not in said.replace(" ", "").replace("-", "") and "seven one nine" not in said.lower(), said

    resp = await http.get(f"{line.backend_url}/api/v1/calls/{call_id}/recording/audio", headers=line.headers)
    rate, caller_ch, _agent = read_stereo_wav(resp.content)
    turn = next(t for t in caller if "[sensitive digits]" in t["text"])
    span = caller_ch[turn["start_ms"] * rate // 1000: turn["end_ms"] * rate // 1000].astype(float)
    assert span.size > rate // 4, turn
    spectrum = np.abs(np.fft.rfft(span))
    assert abs(np.argmax(spectrum) * rate / span.size - 1000) < 25, "the caller's PIN turn is not beeped over"
