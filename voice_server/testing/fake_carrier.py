"""Fake carrier: a TEST DOUBLE of the Twilio and Vobiz REST APIs, following the protocol reference
(/work/shared/reference/telephony-protocols.md, B6 for Twilio and A3 for Vobiz). Never talks to a real carrier.

Twilio (HTTP Basic AccountSid:AuthToken, form bodies, JSON answers, errors as {"code","message","status"}):
  POST /2010-04-01/Accounts/{sid}/Calls.json               create a call (Url or Twiml, StatusCallback[Event],
                                                            MachineDetection/AsyncAmd)           -> 201
  POST /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json     Status=completed (hang up) or Twiml/Url (redirect,
                                                            e.g. <Dial> transfer)                 -> 200, or 404
                                                            with code 20404 for a call that is over
  GET  /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json     the call resource
  GET  /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PhoneNumber=+E164   the account's numbers (ownership)
Vobiz (X-Auth-ID / X-Auth-Token headers, JSON bodies, case- and slash-sensitive paths; others get 401):
  POST   /api/v1/Account/{auth_id}/Call/                    make-call (answer_url, hangup_url, machine_detection)
                                                            -> 201 {"api_id","message":"Call fired","request_uuid"}
  DELETE /api/v1/Account/{auth_id}/Call/{uuid}/             hang up -> 204, or 404 when the call is over
  POST   /api/v1/Account/{auth_id}/Call/{uuid}/             transfer (legs, aleg_url) -> 202; fetches aleg_url
  GET    /api/v1/Account/{auth_id}/Call/{uuid}/?status=live live-call lookup
  GET    /api/v1/Account/{auth_id}/Number/{number}/         a number of the account -> 200, or 404 (not in the
                                                            protocol reference: the Plivo-family numbers resource)
Numbers belong to an account when they are in its CarrierAccount.numbers.

Like the carrier, a created call rings, is answered by a scripted callee (or is busy / not answered / fails), fetches
the answer URL and opens the media stream with the telephony simulator, and posts the status / hangup callbacks.
An answering machine ("voicemail" callee) answers like a person; when the call asked for machine detection the
verdict goes to the async AMD callback (Twilio AsyncAmdStatusCallback with AnsweredBy, B6; Vobiz
machine_detection_url with Machine=true/false, A3). A callee with a `menu` is a simulated phone menu: keys played
to it route it to the branch, which speaks: on Vobiz through its DTMF API, on Twilio as tones in the call's audio
(the network hears them: voice_server/testing/dtmf_decoder.py decodes what the callee's side hears). An answer URL that cannot be reached ends the call the carrier's
way (Twilio: completed; Vobiz: hangup code 7011). `calls` keeps every call with its wall-clock life span, so tests
can assert concurrency caps from the carrier's own log (`max_active_calls_seen`, `max_concurrent()`).
A hang-up or transfer through the API ends the simulated media stream the carrier's way. Every request is logged
in `requests` for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from voice_server.testing.dtmf_decoder import DtmfDecoder
from voice_server.testing.simulator import CallReport, CallScript, CarrierAccount, SimulatedCall

log = logging.getLogger(__name__)

Outcome = Literal["human", "busy", "no-answer", "failed", "voicemail"]


@dataclass
class ScriptedCallee:
    """Who picks up an outbound call to a number, and what they do."""

    outcome: Outcome = "human"
    script: CallScript = field(default_factory=lambda: CallScript(hangup_after_s=1.0, max_duration_s=30))
    ring_s: float = 0.1
    answered_by: str = "human"  # the AMD verdict reported when machine detection was asked for
    amd_delay_s: float = 0.3  # how long after the answer the AMD verdict comes
    # The callee (or answering machine) hangs up this long after answering, whatever the call is doing.
    hangup_after_answer_s: float | None = None
    # A simulated phone menu: what the callee says when a key is pressed (PCM16 mono 8 kHz), e.g. "2" -> "Billing,
    # how can I help?". The menu's own prompt is the script's first turn. Keys arrive by Vobiz's DTMF API or, on
    # Twilio, as in-band tones.
    menu: dict[str, bytes] = field(default_factory=dict)
    # False: the answered call carries no media (the answer URL is not fetched); for dialer benchmarks that measure
    # the carrier API and callbacks only, without a voice server.
    media: bool = True

    def verdict(self, detection: str | None) -> str:
        if self.outcome != "voicemail":
            return self.answered_by
        if self.answered_by != "human":
            return self.answered_by
        # DetectMessageEnd waits for the greeting to end (the beep); Enable answers as soon as it knows.
        return "machine_end_beep" if detection == "DetectMessageEnd" else "machine_start"


@dataclass
class RecordedRequest:
    at: float
    carrier: str
    method: str
    path: str
    body: dict[str, Any]


@dataclass
class FakeCall:
    carrier: Literal["twilio", "vobiz"]
    sid: str
    account: CarrierAccount
    to_number: str
    from_number: str
    direction: str
    status: str = "queued"
    answer_url: str | None = None
    status_callback: str | None = None
    status_events: list[str] = field(default_factory=list)
    sim: SimulatedCall | None = None
    report: CallReport | None = None
    transferred_to: str | None = None
    redirect_twiml: str | None = None
    hung_up_via_api_at: float | None = None
    task: asyncio.Task[None] | None = None
    created: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)
    answered_wall: float | None = None
    ended_wall: float | None = None
    machine_detection: str | None = None  # Twilio "Enable"/"DetectMessageEnd"; Vobiz "true"/"hangup"
    amd_callback: str | None = None
    answered_by: str | None = None  # the AMD verdict sent
    spoken_message: str | None = None  # <Say>/<Speak> the call was redirected to (e.g. a voicemail message)
    # Keypad tones played to the callee: Vobiz DTMF API requests; on Twilio each key decoded from the audio.
    digits_sent: list[str] = field(default_factory=list)
    bridged_with: str | None = None  # warm transfer: the call this one met in a conference room

    @property
    def over(self) -> bool:
        return self.status in ("completed", "busy", "no-answer", "failed", "canceled")


def _room(document: str) -> str | None:
    """The conference a TwiML / Vobiz XML document enters (`<Dial><Conference>` or Vobiz's `<Conference>`)."""
    with contextlib.suppress(ET.ParseError):
        root = ET.fromstring(document)  # noqa: S314 - the voice server's own document, read by a test double
        conference = root.find("Conference")
        if conference is None:
            conference = root.find("Dial/Conference")
        if conference is not None:
            return (conference.text or "").strip() or None
    return None


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status)


class FakeCarrier:
    def __init__(self, accounts: list[CarrierAccount], *, voice_http: httpx.AsyncClient | None = None,
                 l16_byte_order: str = "big") -> None:
        self.accounts = {(a.carrier, a.account_id): a for a in accounts}
        self.calls: dict[str, FakeCall] = {}
        self.requests: list[RecordedRequest] = []
        self.callees: dict[str, ScriptedCallee] = {}
        self.default_callee = ScriptedCallee()
        self.max_live_calls_seen = 0
        self.max_active_calls_seen = 0  # outbound calls not yet over (queued, ringing or in progress) at any moment
        self.l16_byte_order = l16_byte_order
        self._http = voice_http
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self.base_url = ""
        self.app = self._build_app()

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self, port: int, host: str = "127.0.0.1") -> str:
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._serve_task = asyncio.create_task(self._server.serve(), name="fake-carrier")
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()
            await asyncio.sleep(0.02)
        self.base_url = f"http://{host}:{port}"
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=15.0)
        return self.base_url

    async def stop(self) -> None:
        for call in self.calls.values():
            if call.task is not None and not call.task.done():
                call.task.cancel()
        if self._server is not None:
            self._server.should_exit = True
        if self._serve_task is not None:
            with contextlib.suppress(Exception):
                await self._serve_task
        if self._http is not None:
            await self._http.aclose()

    def register_inbound(self, sim: SimulatedCall) -> FakeCall:
        """An inbound call a test places with the simulator: API hang-ups and transfers then reach it."""
        call = FakeCall(carrier=sim.carrier, sid=sim.report.carrier_call_id, account=sim.account,
                        to_number=sim.to_number, from_number=sim.from_number, direction="inbound",
                        status="in-progress", sim=sim, report=sim.report)
        self.calls[call.sid] = call
        self._hear_tones(call, sim)
        return call

    def _hear_tones(self, call: FakeCall, sim: SimulatedCall) -> None:
        """Twilio's network hears the keypad tones played in the stream (its only way for a live stream)."""
        if call.carrier != "twilio":
            return
        decoders: dict[int, DtmfDecoder] = {}

        def heard(pcm: bytes, rate: int) -> None:
            decoder = decoders.setdefault(rate, DtmfDecoder(rate))
            for key in decoder.feed(pcm):
                self._pressed(call, key)

        sim.heard_listeners.append(heard)

    def _pressed(self, call: FakeCall, digits: str) -> None:
        call.digits_sent.append(digits)
        callee = self.callees.get(call.to_number)
        if callee is not None and call.sim is not None:
            for key in digits:
                if key in callee.menu:
                    call.sim.say(callee.menu[key])  # the menu routes the call: the branch answers

    @property
    def live_calls(self) -> int:
        return sum(1 for c in self.calls.values() if c.status == "in-progress")

    @property
    def active_calls(self) -> int:
        return sum(1 for c in self.calls.values() if c.direction != "inbound" and not c.over)

    def _created(self, call: FakeCall) -> None:
        self.calls[call.sid] = call
        self.max_active_calls_seen = max(self.max_active_calls_seen, self.active_calls)

    def _set_status(self, call: FakeCall, status: str) -> None:
        call.status = status
        if call.over and call.ended_wall is None:
            call.ended_wall = time.time()

    def max_concurrent(self, calls: list[FakeCall] | None = None) -> int:
        """Most outbound calls alive at once, from their life spans (creation to the terminal status)."""
        edges: list[tuple[float, int]] = []
        for call in calls if calls is not None else list(self.calls.values()):
            if call.direction == "inbound":
                continue
            edges.append((call.created_wall, 1))
            edges.append((call.ended_wall if call.ended_wall is not None else float("inf"), -1))
        best = current = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            current += step
            best = max(best, current)
        return best

    def _log(self, carrier: str, request: Request, body: dict[str, Any]) -> None:
        self.requests.append(RecordedRequest(time.monotonic(), carrier, request.method, request.url.path, body))

    # -- auth -------------------------------------------------------------------------------------------------
    def _twilio_auth(self, request: Request, account_sid: str) -> CarrierAccount | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        account = self.accounts.get(("twilio", account_sid))
        if account is None or user != account_sid or not secrets.compare_digest(password, account.auth_token):
            return None
        return account

    def _vobiz_auth(self, request: Request, auth_id: str) -> CarrierAccount | None:
        account = self.accounts.get(("vobiz", auth_id))
        if account is None or request.headers.get("x-auth-id") != auth_id:
            return None
        if not secrets.compare_digest(request.headers.get("x-auth-token", ""), account.auth_token):
            return None
        return account

    # -- the app ----------------------------------------------------------------------------------------------
    def _vobiz_live_call(self, request: Request, auth_id: str, call_uuid: str) -> FakeCall | Response:
        """The live call a Vobiz call-resource request is about, or the error Vobiz answers with."""
        if self._vobiz_auth(request, auth_id) is None:
            return JSONResponse({"error": "authentication failed"}, status_code=401)
        call = self.calls.get(call_uuid)
        if call is None or call.over:
            return JSONResponse({"api_id": uuid.uuid4().hex, "error": "call not found"}, status_code=404)
        return call

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Fake carrier (test double)")

        @app.post("/2010-04-01/Accounts/{account_sid}/Calls.json")
        async def twilio_create(account_sid: str, request: Request) -> Response:
            form = await request.form()
            body = {k: (form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k)) for k in form}
            self._log("twilio", request, body)
            account = self._twilio_auth(request, account_sid)
            if account is None:
                return _twilio_error(401, 20003, "Authenticate")
            to, from_ = str(form.get("To") or ""), str(form.get("From") or "")
            url, twiml = form.get("Url"), form.get("Twiml")
            if not to or not from_ or not (url or twiml):
                return _twilio_error(400, 21205, "Url, Twiml or ApplicationSid is required" if to and from_
                                     else "To and From are required")
            call = FakeCall(carrier="twilio", sid="CA" + secrets.token_hex(16), account=account, to_number=to,
                            from_number=from_, direction="outbound-api", answer_url=str(url) if url else None,
                            status_callback=str(form.get("StatusCallback") or "") or None,
                            status_events=[str(e) for e in form.getlist("StatusCallbackEvent")] or ["completed"])
            if twiml:
                call.redirect_twiml = str(twiml)
            if form.get("MachineDetection"):
                call.machine_detection = str(form.get("MachineDetection"))
                if str(form.get("AsyncAmd") or "").lower() == "true":
                    call.amd_callback = str(form.get("AsyncAmdStatusCallback") or "") or None
            self._created(call)
            call.task = asyncio.create_task(self._run_outbound(call), name=f"fake-call-{call.sid}")
            return JSONResponse(self._twilio_resource(call), status_code=201)

        @app.post("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json")
        async def twilio_update(account_sid: str, call_sid: str, request: Request) -> Response:
            form = await request.form()
            self._log("twilio", request, dict(form))
            if self._twilio_auth(request, account_sid) is None:
                return _twilio_error(401, 20003, "Authenticate")
            call = self.calls.get(call_sid)
            if call is None or call.over:
                return _twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
            status, twiml = form.get("Status"), form.get("Twiml")
            if status in ("completed", "canceled"):
                await self._end_by_api(call, "completed")
            elif twiml:
                call.redirect_twiml = str(twiml)
                self._apply_twiml(call, str(twiml))
                if "<Conference" in str(twiml) and call.sim is not None:
                    # Waiting in a conference (warm transfer): the stream ends, the call goes on until the
                    # voice server bridges it or, if the human does not answer, redirects it again.
                    await call.sim.carrier_hangup("redirected")
                else:
                    await self._end_by_api(call, "completed", reason="redirected")
            elif form.get("Url"):
                call.redirect_twiml = f"<Redirect>{form.get('Url')}</Redirect>"
                await self._end_by_api(call, "completed", reason="redirected")
            return JSONResponse(self._twilio_resource(call))

        @app.get("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json")
        async def twilio_fetch(account_sid: str, call_sid: str, request: Request) -> Response:
            if self._twilio_auth(request, account_sid) is None:
                return _twilio_error(401, 20003, "Authenticate")
            call = self.calls.get(call_sid)
            if call is None:
                return _twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
            return JSONResponse(self._twilio_resource(call))

        @app.post("/api/v1/Account/{auth_id}/Call/")
        async def vobiz_make_call(auth_id: str, request: Request) -> Response:
            body = await self._json(request)
            self._log("vobiz", request, body)
            account = self._vobiz_auth(request, auth_id)
            if account is None:
                return JSONResponse({"error": "authentication failed"}, status_code=401)
            missing = [k for k in ("from", "to", "answer_url") if not body.get(k)]
            if missing:
                return JSONResponse({"api_id": uuid.uuid4().hex, "error": f"missing {', '.join(missing)}"},
                                    status_code=400)
            call = FakeCall(carrier="vobiz", sid=str(uuid.uuid4()), account=account,
                            to_number="+" + str(body["to"]).lstrip("+"), from_number="+" + str(body["from"]).lstrip("+"),
                            direction="outbound", answer_url=str(body["answer_url"]),
                            status_callback=str(body.get("hangup_url") or "") or None)
            if str(body.get("machine_detection") or "").lower() in ("true", "hangup"):
                call.machine_detection = str(body["machine_detection"]).lower()
                call.amd_callback = str(body.get("machine_detection_url") or "") or None
            self._created(call)
            call.task = asyncio.create_task(self._run_outbound(call), name=f"fake-call-{call.sid}")
            return JSONResponse({"api_id": uuid.uuid4().hex, "message": "Call fired", "request_uuid": call.sid},
                                status_code=201)

        @app.delete("/api/v1/Account/{auth_id}/Call/{call_uuid}/")
        async def vobiz_hangup(auth_id: str, call_uuid: str, request: Request) -> Response:
            self._log("vobiz", request, {})
            call = self._vobiz_live_call(request, auth_id, call_uuid)
            if isinstance(call, Response):
                return call
            await self._end_by_api(call, "completed")
            return Response(status_code=204)

        @app.post("/api/v1/Account/{auth_id}/Call/{call_uuid}/")
        async def vobiz_transfer(auth_id: str, call_uuid: str, request: Request) -> Response:
            body = await self._json(request)
            self._log("vobiz", request, body)
            call = self._vobiz_live_call(request, auth_id, call_uuid)
            if isinstance(call, Response):
                return call
            legs = body.get("legs", "aleg")
            url = body.get("aleg_url") if legs in ("aleg", "both") else body.get("bleg_url")
            if not url:
                return JSONResponse({"api_id": uuid.uuid4().hex, "error": "aleg_url is required"}, status_code=400)
            assert self._http is not None
            resp = await self._http.post(str(url), data={"CallUUID": call.sid, "Event": "Transfer",
                                                         "From": call.from_number.lstrip("+"),
                                                         "To": call.to_number.lstrip("+")})
            call.redirect_twiml = resp.text
            self._apply_twiml(call, resp.text)
            if _room(resp.text) and call.sim is not None:
                # Waiting in a conference (warm transfer, reference R3): the stream ends, the call goes on.
                await call.sim.carrier_hangup("redirected")
            else:
                await self._end_by_api(call, "completed", reason="redirected")
            return JSONResponse({"api_id": uuid.uuid4().hex, "message": "call transferred", "call_uuid": call.sid},
                                status_code=202)

        @app.post("/api/v1/Account/{auth_id}/Call/{call_uuid}/DTMF/")
        async def vobiz_dtmf(auth_id: str, call_uuid: str, request: Request) -> Response:
            body = await self._json(request)
            self._log("vobiz", request, body)
            call = self._vobiz_live_call(request, auth_id, call_uuid)
            if isinstance(call, Response):
                return call
            digits = str(body.get("digits") or "")
            if not re.fullmatch(r"[0-9*#wW]{1,64}", digits):
                return JSONResponse({"api_id": uuid.uuid4().hex, "error": "invalid digits"}, status_code=400)
            self._pressed(call, digits)
            return JSONResponse({"api_id": uuid.uuid4().hex, "message": "digits sent"}, status_code=202)

        @app.get("/api/v1/Account/{auth_id}/Call/{call_uuid}/")
        async def vobiz_live(auth_id: str, call_uuid: str, request: Request, status: str | None = None) -> Response:
            if self._vobiz_auth(request, auth_id) is None:
                return JSONResponse({"error": "authentication failed"}, status_code=401)
            call = self.calls.get(call_uuid)
            if status != "live" or call is None or call.over:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse({"call_uuid": call.sid, "call_status": call.status, "from": call.from_number,
                                 "to": call.to_number, "direction": call.direction})

        @app.get("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json")
        async def twilio_numbers(account_sid: str, request: Request, PhoneNumber: str | None = None  # noqa: N803
                                 ) -> Response:
            """The account's numbers, optionally only the one asked for (the backend's ownership check)."""
            account = self._twilio_auth(request, account_sid)
            if account is None:
                return _twilio_error(401, 20003, "Authenticate")
            owned = sorted(n for n in account.numbers if PhoneNumber in (None, n))
            return JSONResponse({"incoming_phone_numbers": [
                {"sid": "PN" + uuid.uuid5(uuid.NAMESPACE_URL, n).hex, "account_sid": account_sid, "phone_number": n}
                for n in owned]})

        @app.get("/api/v1/Account/{auth_id}/Number/{number}/")
        async def vobiz_number(auth_id: str, number: str, request: Request) -> Response:
            account = self._vobiz_auth(request, auth_id)
            if account is None:
                return JSONResponse({"error": "authentication failed"}, status_code=401)
            if f"+{number.lstrip('+')}" not in account.numbers:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse({"number": number.lstrip("+"), "account": auth_id})

        @app.api_route("/api/v1/{rest:path}", methods=["GET", "POST", "DELETE", "PUT"])
        async def vobiz_wrong_path(rest: str, request: Request) -> Response:
            self._log("vobiz", request, {})
            # Vobiz paths are case- and slash-sensitive; anything else answers 401 (reference A3, C11).
            return JSONResponse({"error": "authentication failed"}, status_code=401)

        return app

    @staticmethod
    async def _json(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _twilio_resource(self, call: FakeCall) -> dict[str, Any]:
        return {"sid": call.sid, "account_sid": call.account.account_id, "to": call.to_number,
                "from": call.from_number, "status": call.status, "direction": call.direction,
                "api_version": "2010-04-01", "uri": f"/2010-04-01/Accounts/{call.account.account_id}/Calls/"
                                                   f"{call.sid}.json"}

    def _apply_twiml(self, call: FakeCall, document: str) -> None:
        with contextlib.suppress(ET.ParseError):
            root = ET.fromstring(document)  # noqa: S314 - the voice server's own document, read by a test double
            spoken = root.find("Say") if root.find("Say") is not None else root.find("Speak")
            if spoken is not None:
                call.spoken_message = (spoken.text or "").strip()
            dial = root.find("Dial")
            if root.find("Conference") is not None:  # Vobiz: <Conference> is a top-level verb (reference R3)
                call.transferred_to = f"conference:{_room(document)}"
            if dial is not None:
                number = dial.find("Number")
                conference = dial.find("Conference")
                target = (number.text if number is not None else None) or (dial.text or "").strip()
                if conference is not None:
                    target = f"conference:{(conference.text or '').strip()}"
                call.transferred_to = target.strip() or None

    async def _end_by_api(self, call: FakeCall, status: str, reason: str = "carrier_hangup") -> None:
        call.hung_up_via_api_at = time.monotonic()
        if call.sim is not None:
            await call.sim.carrier_hangup(reason)
        self._set_status(call, status)

    # -- outbound calls ---------------------------------------------------------------------------------------
    async def _status(self, call: FakeCall, status: str, **extra: str) -> None:
        self._set_status(call, status)
        if not call.status_callback:
            return
        if call.carrier == "twilio":
            event = {"queued": "initiated", "in-progress": "answered"}.get(status, status)
            terminal = status in ("completed", "busy", "no-answer", "failed", "canceled")
            if event not in call.status_events and not terminal:
                return
            params = {"CallSid": call.sid, "AccountSid": call.account.account_id, "From": call.from_number,
                      "To": call.to_number, "CallStatus": status, "Direction": call.direction,
                      "ApiVersion": "2010-04-01", "CallbackSource": "call-progress-events",
                      "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), **extra}
        else:
            if status not in ("completed", "busy", "no-answer", "failed"):
                return
            cause = {"completed": "NORMAL_CLEARING", "busy": "USER_BUSY", "no-answer": "NO_ANSWER",
                     "failed": "UNALLOCATED_NUMBER"}[status]
            code = {"completed": "4000", "busy": "3010", "no-answer": "3000", "failed": "8000"}[status]
            params = {"Event": "Hangup", "CallUUID": call.sid, "RequestUUID": call.sid, "From": call.from_number.lstrip("+"),
                      "To": call.to_number.lstrip("+"), "Direction": "outbound", "CallStatus": status,
                      "HangupCause": cause, "HangupCauseCode": code,
                      "HangupSource": "API Request" if call.hung_up_via_api_at else "Callee", **extra}
            if call.answered_wall is not None:
                params.setdefault("AnswerTime", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(call.answered_wall)))
                params.setdefault("Duration", str(int(time.time() - call.answered_wall)))
        await self._post_signed(call, call.status_callback, params)

    async def _post_signed(self, call: FakeCall, url: str, params: dict[str, str]) -> None:
        """A callback as the carrier sends it: form-encoded, signed with the account's token."""
        signer = SimulatedCall(carrier=call.carrier, answer_url=url, account=call.account,
                               from_number=call.from_number, to_number=call.to_number, script=CallScript())
        assert self._http is not None
        with contextlib.suppress(httpx.HTTPError):
            await self._http.post(url, data=params, headers=signer.signed_headers(url, params))

    async def _run_outbound(self, call: FakeCall) -> None:
        callee = self.callees.get(call.to_number, self.default_callee)
        try:
            await self._status(call, "queued")
            await asyncio.sleep(callee.ring_s)
            await self._status(call, "ringing")
            if callee.outcome in ("busy", "no-answer", "failed"):
                await self._status(call, callee.outcome)
                return
            if call.answer_url is None:  # inline TwiML (e.g. the human leg of a warm transfer)
                await self._status(call, "in-progress")
                self._join_room(call, call.redirect_twiml or "")
                await asyncio.sleep(0.2)
                await self._status(call, "completed")
                return
            call.status = "in-progress"
            call.answered_wall = time.time()
            self.max_live_calls_seen = max(self.max_live_calls_seen, self.live_calls)
            await self._status(call, "in-progress")
            sim = SimulatedCall(carrier=call.carrier, answer_url=call.answer_url, account=call.account,
                                from_number=call.from_number, to_number=call.to_number, script=callee.script,
                                http=self._http, carrier_call_id=call.sid, direction="outbound",
                                l16_byte_order=self.l16_byte_order)
            if not callee.media:
                amd = asyncio.create_task(self._report_amd(call, callee)) if call.machine_detection else None
                until = time.monotonic() + (callee.hangup_after_answer_s or 1.0)
                while not call.over and time.monotonic() < until:  # noqa: ASYNC110 - an API hang-up ends it early
                    await asyncio.sleep(0.02)
                if amd is not None:
                    amd.cancel()
                # Over by the callee's hang-up or through the API: either way the final callback goes out now.
                await self._status(call, "completed", CallDuration=str(int(time.monotonic() - call.created)))
                return
            call.sim = sim
            self._hear_tones(call, sim)
            side: list[asyncio.Task[None]] = []
            if call.machine_detection and call.amd_callback:
                side.append(asyncio.create_task(self._report_amd(call, callee)))
            if callee.hangup_after_answer_s is not None:
                side.append(asyncio.create_task(self._callee_hangs_up(call, sim, callee.hangup_after_answer_s)))
            try:
                call.report = await sim.run()
            except ValueError:
                if not _room(sim.report.answer_xml or ""):
                    raise
                # An answer document that enters a conference (the human of a Vobiz warm transfer): no stream;
                # the leg hears what it says, then meets whoever waits in the room.
                call.report = sim.report
                self._apply_twiml(call, sim.report.answer_xml or "")
                call.redirect_twiml = sim.report.answer_xml
                self._join_room(call, sim.report.answer_xml or "")
                await asyncio.sleep(0.2)
                for task in side:
                    task.cancel()
                if not call.over:
                    await self._status(call, "completed")
                return
            except Exception as exc:  # noqa: BLE001 - whatever failed on the media side, the carrier ends the call
                # Like the carrier: an answer URL or stream it cannot use ends the call (Twilio reads an application
                # error and reports completed; Vobiz hangs up with 7011) and the final callback still goes out.
                log.info("fake call %s: answer URL / media failed: %r", call.sid, exc)
                call.report = sim.report
                for task in side:
                    task.cancel()
                if not call.over:
                    await self._status(call, "completed", HangupCause="ERROR_REACHING_ANSWER_URL",
                                       HangupCauseCode="7011")
                return
            for task in side:
                task.cancel()
            if not call.over:
                await self._status(call, "completed", CallDuration=str(int(time.monotonic() - call.created)))
            elif call.carrier == "vobiz" or call.status_callback:
                await self._status(call, "completed")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("fake call %s failed", call.sid)
            self._set_status(call, "failed")

    async def _report_amd(self, call: FakeCall, callee: ScriptedCallee) -> None:
        """The async answering-machine verdict, the carrier's way (reference B6 / A3)."""
        await asyncio.sleep(callee.amd_delay_s)
        if call.over or not call.amd_callback:
            return
        verdict = callee.verdict(call.machine_detection if call.carrier == "twilio" else None)
        call.answered_by = verdict
        machine = verdict != "human" and verdict != "unknown"
        if call.carrier == "twilio":
            params = {"CallSid": call.sid, "AccountSid": call.account.account_id, "AnsweredBy": verdict,
                      "MachineDetectionDuration": str(int(callee.amd_delay_s * 1000))}
        else:
            params = {"Event": "MachineDetection", "Machine": "true" if machine else "false",
                      "IfMachine": "hangup" if call.machine_detection == "hangup" else "continue",
                      "CallUUID": call.sid, "RequestUUID": call.sid, "ALegUUID": call.sid, "ALegRequestUUID": call.sid,
                      "From": call.from_number.lstrip("+"), "To": call.to_number.lstrip("+"), "Direction": "outbound",
                      "CallStatus": "in-progress"}
        await self._post_signed(call, call.amd_callback, params)
        if machine and call.carrier == "vobiz" and call.machine_detection == "hangup":
            await self._end_by_api(call, "completed", reason="machine_detected")

    def _join_room(self, call: FakeCall, document: str) -> None:
        """A leg enters a conference: it is bridged with the call waiting there (a warm transfer's caller)."""
        room = _room(document)
        if not room:
            return
        waiting = next((c for c in self.calls.values() if c is not call and not c.over
                        and c.transferred_to == f"conference:{room}"), None)
        if waiting is not None:
            waiting.bridged_with, call.bridged_with = call.sid, waiting.sid

    @staticmethod
    async def _callee_hangs_up(call: FakeCall, sim: SimulatedCall, after_s: float) -> None:
        await asyncio.sleep(after_s)
        if not call.over:
            await sim.caller_hangup()
