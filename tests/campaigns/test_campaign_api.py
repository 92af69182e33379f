"""The campaign and do-not-call API against the real backend: CSV uploads (row-level errors, all or nothing, odd
encodings, formula-safe reports), validation, lifecycle rules, tenancy and roles, callback authentication."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from campaign_testkit import Org, campaign_body, contact_number, ok, provision_org

from telephony.twilio import twilio_signature

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def org(campaign_base: Any) -> Org:
    return await provision_org(campaign_base.http, campaign_base.backend_url, campaign_base.carrier)


async def new_campaign(base: Any, org: Org, **overrides: Any) -> str:
    body = await ok(await base.http.post(f"{base.backend_url}/api/v1/campaigns", headers=org.headers,
                                         json=campaign_body(org, **overrides)), 201)
    return str(body["id"])


async def upload(base: Any, org: Org, cid: str, data: bytes, **form: str) -> Any:
    return await base.http.post(f"{base.backend_url}/api/v1/campaigns/{cid}/contacts", headers=org.headers,
                                files={"file": ("contacts.csv", data, "text/csv")}, data=form)


async def contact_count(base: Any, org: Org, cid: str) -> int:
    page = await ok(await base.http.get(f"{base.backend_url}/api/v1/campaigns/{cid}/contacts", headers=org.headers,
                                        params={"limit": 500}))
    return len(page["items"])


async def test_bad_csv_gives_row_errors_and_imports_nothing(campaign_base: Any, org: Org) -> None:
    cid = await new_campaign(campaign_base, org)
    good = [contact_number("US") for _ in range(200)]
    rows = ["phone,first_name,timezone"] + [f"{n},Ann," for n in good]
    rows[5] = "12,Bob,"  # too short
    rows[9] = "4.15555E+09,Cy,"  # a spreadsheet ate it
    rows[40] = "call me maybe,Dee,"
    rows[77] = f"{good[76]},Eve,Mars/Olympus"
    rows[120] = f"{good[119]},Fay"  # a field missing
    rows[150] = '"=HYPERLINK(""http://evil.example"",""click"")",Gus,'
    resp = await upload(campaign_base, org, cid, ("\n".join(rows) + "\n").encode())
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_csv" and error["message"].startswith("6 invalid row(s), nothing was imported")
    paths = [d["path"] for d in error["details"]]
    assert paths == ["file.rows[6].phone", "file.rows[10].phone", "file.rows[41].phone", "file.rows[78].timezone",
                     "file.rows[121]", "file.rows[151].phone"]
    assert "scientific notation" in error["details"][1]["message"]
    assert await contact_count(campaign_base, org, cid) == 0  # nothing half-way
    # The stored report, and its CSV export, safe to open in a spreadsheet.
    report = await ok(await campaign_base.http.get(f"{campaign_base.backend_url}{resp.headers['location']}",
                                                   headers=org.headers))
    assert report["error_count"] == 6 and report["imported"] == 0
    text = await ok(await campaign_base.http.get(f"{campaign_base.backend_url}{resp.headers['location']}/errors.csv",
                                                 headers=org.headers))
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    # Start is refused without contacts.
    start = await campaign_base.http.post(f"{campaign_base.backend_url}/api/v1/campaigns/{cid}/start",
                                          headers=org.headers)
    assert start.status_code == 409 and start.json()["error"]["code"] == "no_contacts"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "latin-1", "utf-16", "cp1252"])
async def test_odd_encodings_and_national_numbers(campaign_base: Any, org: Org, encoding: str) -> None:
    cid = await new_campaign(campaign_base, org)
    delimiter = {"utf-8-sig": ";", "latin-1": ",", "utf-16": "\t", "cp1252": ","}[encoding]
    name = "Renée Müller" if encoding != "cp1252" else "Zoë “quoted” Ñuñez"
    text = delimiter.join(["Mobile Number", "First Name", "City"]) + "\r\n"
    text += delimiter.join(["(415) 555-2671", name, "São Paulo"]) + "\r\n"
    text += delimiter.join(["+44 20 7183 8750", "Bob", "London"]) + "\r\n"
    text += delimiter.join(["001 212 555 0198", "Cy", "New York"]) + "\r\n"
    text += delimiter.join(["415.555.2671", "Dup", "x"]) + "\r\n"  # the first number again
    resp = await upload(campaign_base, org, cid, text.encode(encoding))
    report = await ok(resp, 201)
    assert (report["imported"], report["duplicates_in_file"]) == (3, 1)
    assert report["phone_column"] == "mobile_number" and report["variables"] == ["first_name", "city"]
    assert report["delimiter"] == delimiter
    page = await ok(await campaign_base.http.get(f"{campaign_base.backend_url}/api/v1/campaigns/{cid}/contacts",
                                                 headers=org.headers))
    by_phone = {c["phone"]: c for c in page["items"]}
    assert set(by_phone) == {"+14155552671", "+442071838750", "+12125550198"}
    assert by_phone["+14155552671"]["variables"] == {"first_name": name, "city": "São Paulo"}


async def test_dedup_across_uploads_and_default_region(campaign_base: Any, org: Org) -> None:
    cid = await new_campaign(campaign_base, org, default_region="GB")
    first = await ok(await upload(campaign_base, org, cid, b"phone\n020 7183 8750\n07911 123456\n"), 201)
    assert first["imported"] == 2
    second = await ok(await upload(campaign_base, org, cid, b"phone\n+447911123456\n020 7946 0958\n"), 201)
    assert (second["imported"], second["already_present"]) == (1, 1)
    assert await contact_count(campaign_base, org, cid) == 3
    # A column named explicitly, and a region given for this file only.
    third = await ok(await upload(campaign_base, org, cid, b"name,cell number\nAl,(415) 555-2672\n",
                                  phone_column="Cell Number", default_region="US"), 201)
    assert third["imported"] == 1 and third["phone_column"] == "cell_number"
    missing = await upload(campaign_base, org, cid, b"name,tel\nAl,123\n", phone_column="mobile")
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["path"] == "file.rows[1].mobile"


async def test_report_neutralises_formulas(campaign_base: Any, org: Org) -> None:
    cid = await new_campaign(campaign_base, org)
    number = contact_number("US")
    data = f'phone,note,who\n{number},"=1+2","@SUM(A1)"\n'.encode()
    await ok(await upload(campaign_base, org, cid, data), 201)
    text = await ok(await campaign_base.http.get(f"{campaign_base.backend_url}/api/v1/campaigns/{cid}/report.csv",
                                                 headers=org.headers))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["note"] == "'=1+2" and rows[0]["who"] == "'@SUM(A1)" and rows[0]["phone"] == f"'{number}"
    assert rows[0]["status"] == "pending"


async def test_campaign_validation_and_lifecycle(campaign_base: Any, org: Org) -> None:
    url = f"{campaign_base.backend_url}/api/v1/campaigns"
    bad = campaign_body(org, windows={"timezone": "Mars/Base", "days": {}})
    resp = await campaign_base.http.post(url, headers=org.headers, json=bad)
    assert resp.status_code == 422 and resp.json()["error"]["details"][0]["path"].startswith("body.windows.timezone")
    resp = await campaign_base.http.post(url, headers=org.headers, json=campaign_body(
        org, voicemail={"action": "leave_message"}))
    assert resp.status_code == 422
    resp = await campaign_base.http.post(url, headers=org.headers, json=campaign_body(
        org, windows={"timezone": "UTC", "days": {"mon": [{"start": "17:00", "end": "09:00"}]}}))
    assert resp.status_code == 422
    cid = await new_campaign(campaign_base, org)
    await ok(await upload(campaign_base, org, cid, f"phone\n{contact_number('US')}\n".encode()), 201)
    patched = await ok(await campaign_base.http.patch(f"{url}/{cid}", headers=org.headers,
                                                      json={"max_concurrent_calls": 9, "calls_per_second": 0.5}))
    assert (patched["max_concurrent_calls"], patched["calls_per_second"]) == (9, 0.5)
    assert patched["contact_count"] == 1 and patched["status"] == "draft"
    bad_pause = await campaign_base.http.post(f"{url}/{cid}/pause", headers=org.headers)
    assert bad_pause.status_code == 409
    canceled = await ok(await campaign_base.http.post(f"{url}/{cid}/cancel", headers=org.headers))
    assert canceled["status"] == "canceled"
    late = await upload(campaign_base, org, cid, f"phone\n{contact_number('US')}\n".encode())
    assert late.status_code == 409
    await ok(await campaign_base.http.delete(f"{url}/{cid}", headers=org.headers), 204)
    assert (await campaign_base.http.get(f"{url}/{cid}", headers=org.headers)).status_code == 404
    settings = await ok(await campaign_base.http.put(f"{campaign_base.backend_url}/api/v1/campaign-settings",
                                                     headers=org.headers, json={"max_concurrent_calls": 7}))
    assert settings == {"max_concurrent_calls": 7}


async def test_other_organisations_see_nothing(campaign_base: Any, org: Org) -> None:
    base, http = campaign_base.backend_url, campaign_base.http
    cid = await new_campaign(campaign_base, org)
    await ok(await upload(campaign_base, org, cid, f"phone\n{contact_number('US')}\n".encode()), 201)
    await ok(await http.post(f"{base}/api/v1/dnc", headers=org.headers, json={"phone": "+14155550100"}), 201)
    other = await provision_org(http, base, campaign_base.carrier, carriers=("twilio",))
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/contacts"), ("GET", "/progress"),
                         ("GET", "/events"), ("GET", "/report.csv"), ("POST", "/start"), ("POST", "/cancel")]:
        resp = await http.request(method, f"{base}/api/v1/campaigns/{cid}{path}", headers=other.headers,
                                  json={} if method == "PATCH" else None)
        assert resp.status_code == 404, (method, path, resp.status_code)
    resp = await http.post(f"{base}/api/v1/campaigns/{cid}/contacts", headers=other.headers,
                           files={"file": ("c.csv", b"phone\n+14155552671\n", "text/csv")})
    assert resp.status_code == 404
    assert (await ok(await http.get(f"{base}/api/v1/campaigns", headers=other.headers))) == []
    assert (await http.get(f"{base}/api/v1/dnc/+14155550100", headers=other.headers)).status_code == 404
    # Nor can it point a campaign at another organisation's agent or numbers.
    stolen = campaign_body(other, agent_id=org.agent_id)
    assert (await http.post(f"{base}/api/v1/campaigns", headers=other.headers, json=stolen)).status_code == 422
    stolen = campaign_body(other, caller_number_ids=[org.numbers["twilio"]["id"]])
    resp = await http.post(f"{base}/api/v1/campaigns", headers=other.headers, json=stolen)
    assert resp.status_code == 422 and resp.json()["error"]["details"][0]["path"] == "body.caller_number_ids.0"


async def test_dnc_api_roles_and_csv(campaign_base: Any, org: Org) -> None:
    base, http = campaign_base.backend_url, campaign_base.http
    created = await http.post(f"{base}/api/v1/dnc", headers=org.headers, json={"phone": "(415) 555-0101"})
    assert created.status_code == 201 and created.json()["phone"] == "+14155550101"
    again = await http.post(f"{base}/api/v1/dnc", headers=org.headers, json={"phone": "+1 415 555 0101"})
    assert again.status_code == 200
    bad = await http.post(f"{base}/api/v1/dnc", headers=org.headers, json={"phone": "not a number"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "body.phone"
    file = "\ufeffphone;reason\n+14155550102;asked\n4155550103;\n".encode()
    report = await ok(await http.post(f"{base}/api/v1/dnc/import", headers=org.headers,
                                      files={"file": ("d.csv", file, "text/csv")}), 201)
    assert report["imported"] == 2
    broken = b"phone\n+14155550104\nnope\n"
    resp = await http.post(f"{base}/api/v1/dnc/import", headers=org.headers,
                           files={"file": ("d.csv", broken, "text/csv")})
    assert resp.status_code == 422 and resp.json()["error"]["details"][0]["path"] == "file.rows[3].phone"
    assert (await http.get(f"{base}/api/v1/dnc/+14155550104", headers=org.headers)).status_code == 404
    listed = await ok(await http.get(f"{base}/api/v1/dnc", headers=org.headers, params={"limit": 2}))
    assert len(listed["items"]) == 2 and listed["next_cursor"]
    rest = await ok(await http.get(f"{base}/api/v1/dnc", headers=org.headers, params={"cursor": listed["next_cursor"]}))
    assert {e["phone"] for e in listed["items"] + rest["items"]} == {"+14155550101", "+14155550102", "+14155550103"}
    # A member may add numbers (restricting calls is always safe) but not remove them.
    invite = await ok(await http.post(f"{base}/api/v1/org/invitations", headers=org.headers,
                                      json={"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "role": "member"}), 201)
    member = await ok(await http.post(f"{base}/api/v1/auth/invitations/accept",
                                      json={"token": invite["token"], "password": "member-pass-123", "name": "M"}))
    mh = {"Authorization": f"Bearer {member['access_token']}"}
    assert (await http.post(f"{base}/api/v1/dnc", headers=mh, json={"phone": "+14155550105"})).status_code == 201
    assert (await http.delete(f"{base}/api/v1/dnc/+14155550105", headers=mh)).status_code == 403
    assert (await http.post(f"{base}/api/v1/campaigns", headers=mh, json=campaign_body(org))).status_code == 403
    assert (await http.get(f"{base}/api/v1/campaigns", headers=mh)).status_code == 200
    cid = await new_campaign(campaign_base, org)
    for method, path, body in [("PATCH", "", {"name": "x"}), ("POST", "/start", None), ("POST", "/cancel", None),
                               ("DELETE", "", None)]:
        resp = await http.request(method, f"{base}/api/v1/campaigns/{cid}{path}", headers=mh, json=body)
        assert resp.status_code == 403, (method, path)
    upload_resp = await http.post(f"{base}/api/v1/campaigns/{cid}/contacts", headers=mh,
                                  files={"file": ("c.csv", b"phone\n+14155552671\n", "text/csv")})
    assert upload_resp.status_code == 403
    assert (await http.put(f"{base}/api/v1/campaign-settings", headers=mh,
                           json={"max_concurrent_calls": 3})).status_code == 403
    for path in ("", "/progress", "/contacts", "/report.csv"):
        assert (await http.get(f"{base}/api/v1/campaigns/{cid}{path}", headers=mh)).status_code == 200, path
    assert (await http.delete(f"{base}/api/v1/dnc/+14155550105", headers=org.headers)).status_code == 204


async def test_callbacks_need_the_signed_url_and_the_carrier_signature(campaign_base: Any, org: Org) -> None:
    base, http = campaign_base.backend_url, campaign_base.http
    runtime = campaign_base.backend.app.state.campaigns
    fake_attempt = "0" * 32 + "-1"
    url = f"{base}/api/v1/campaign-callbacks/twilio/{fake_attempt}/{'A' * 24}/status"
    assert (await http.post(url, data={"CallStatus": "completed"})).status_code == 403  # forged URL token
    signed = runtime.urls.url("twilio", fake_attempt, "status")
    assert (await http.post(signed, data={"CallStatus": "completed"})).status_code == 404  # valid URL, no attempt
    assert runtime.urls.url("vobiz", fake_attempt, "status") != signed.replace("/twilio/", "/vobiz/")
    # With a real attempt the Twilio signature is checked against the org's auth token.
    from backend.campaigns.collections import ATTEMPTS

    attempt_id = uuid.uuid4().hex + "-1"
    await runtime.callbacks._db[ATTEMPTS].insert_one({"_id": attempt_id, "org_id": org.org_id, "carrier": "twilio",
                                                      "campaign_id": "none", "contact_id": "none", "attempt": 1})
    signed = runtime.urls.url("twilio", attempt_id, "status")
    params = {"CallSid": "CA" + "1" * 32, "CallStatus": "ringing"}
    forged = await http.post(signed, data=params, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 403
    good = twilio_signature(org.accounts["twilio"].auth_token, signed, params)
    assert (await http.post(signed, data=params, headers={"X-Twilio-Signature": good})).status_code == 204
