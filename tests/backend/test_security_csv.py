"""Hostile CSVs, in and out, against the real backend on real FerretDB: uploads that are empty, binary, one huge
line, a broken quote, a UTF-16 mark over garbage... each gets a clear error and imports nothing (contacts and
do-not-call list alike). Every CSV the platform exports (call log, campaign outcome report, import errors) turns
cells a spreadsheet would run as a formula (= + - @ tab CR) into text."""

from __future__ import annotations

import csv
import io
import os
import uuid
from typing import Any

import httpx
import pytest
from backend_testkit import Account, call_events, create_agent, post_events, register, unique_number

from backend.campaigns.csv_io import neutralize_cell
from backend.services.call_history import neutralise_cell

FORMULAS = ["=1+2", "+1+2", "-1+2", "@SUM(A1)", "\t=1+2", "\r=1+2", '=HYPERLINK("http://evil.example","x")']
WEEK = {day: [{"start": "00:00", "end": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


async def _campaign(client: httpx.AsyncClient, owner: Account) -> str:
    agent = await create_agent(client, owner, "CSV agent")
    number = await client.post("/api/v1/phone-numbers", json={"number": unique_number(), "carrier": "twilio"},
                               headers=owner.headers)
    assert number.status_code == 201, number.text
    resp = await client.post("/api/v1/campaigns", headers=owner.headers, json={
        "name": f"CSV {uuid.uuid4().hex[:6]}", "agent_id": agent["id"], "caller_number_ids": [number.json()["id"]],
        "windows": {"timezone": "UTC", "days": WEEK}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _upload(data: bytes) -> dict[str, Any]:
    return {"files": {"file": ("contacts.csv", data, "text/csv")}}


HOSTILE_UPLOADS: dict[str, bytes] = {
    "empty": b"",
    "only blank lines": b"\r\n\r\n   \n",
    "binary (PNG)": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
    "random bytes": os.urandom(4096).replace(b"\x00", b"\x01"),
    "NUL inside text": b"phone,name\n+14155552671,A\x00nn\n",
    "UTF-16 mark over garbage": b"\xff\xfe" + b"\x00\xd8" + b"a",
    "one huge line (3 MB cell)": b"phone,note\n+14155552671," + b"x" * (3 * 1024 * 1024) + b"\n",
    "one huge header line": b",".join([b"col%d" % i for i in range(100_000)]) + b"\n+14155552671\n",
    "broken quote": b'phone,name\n+14155552671,"Ann\n+14155552672,Bob\n',
    "header only": b"phone,first_name\n",
    "no phone column": b"name,city\nAnn,Paris\n",
}


@pytest.mark.parametrize("label", list(HOSTILE_UPLOADS))
async def test_hostile_contact_uploads_get_a_clear_error_and_import_nothing(client: httpx.AsyncClient,
                                                                            label: str) -> None:
    owner = await register(client, "csv-in")
    cid = await _campaign(client, owner)
    resp = await client.post(f"/api/v1/campaigns/{cid}/contacts", headers=owner.headers,
                             **_upload(HOSTILE_UPLOADS[label]))
    assert resp.status_code in (400, 413, 422), (label, resp.status_code, resp.text[:300])
    error = resp.json()["error"]
    assert error["message"] and error["code"] != "internal_error", error
    contacts = await client.get(f"/api/v1/campaigns/{cid}/contacts", headers=owner.headers)
    assert contacts.status_code == 200 and contacts.json()["items"] == []
    # A good file right after is imported whole: the bad one left nothing behind that blocks it.
    good = await client.post(f"/api/v1/campaigns/{cid}/contacts", headers=owner.headers,
                             **_upload(b"phone\n+14155552671\n+14155552672\n"))
    assert good.status_code == 201 and good.json()["imported"] == 2, good.text


async def test_hostile_dnc_uploads_import_nothing(client: httpx.AsyncClient) -> None:
    owner = await register(client, "csv-dnc")
    for label in ("empty", "binary (PNG)", "NUL inside text", "one huge line (3 MB cell)", "broken quote"):
        resp = await client.post("/api/v1/dnc/import", headers=owner.headers, **_upload(HOSTILE_UPLOADS[label]))
        assert resp.status_code in (400, 413, 422), (label, resp.status_code, resp.text[:300])
        assert resp.json()["error"]["code"] != "internal_error"
        listed = await client.get("/api/v1/dnc", headers=owner.headers)
        assert listed.status_code == 200 and listed.json()["items"] == [], label


def test_cell_neutralisers_quote_every_formula_prefix() -> None:
    """The two writers behind every export, on values that keep their leading tab/CR (none are trimmed here)."""
    for neutralise in (neutralise_cell, neutralize_cell):
        assert [neutralise(f) for f in FORMULAS] == ["'" + f for f in FORMULAS]
        assert neutralise("Ann") == "Ann" and neutralise(None) == "" and neutralise(" =1") == " =1"


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def _assert_no_formula(cells: list[str]) -> None:
    running = [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert not running, running


async def test_call_log_export_neutralises_every_formula_prefix(client: httpx.AsyncClient) -> None:
    owner = await register(client, "csv-calls")
    for formula in FORMULAS:
        agent = await create_agent(client, owner, formula)
        _, events = call_events(owner.org_id, agent_id=agent["id"], campaign_id=formula)
        await post_events(client, events)
    resp = await client.get("/api/v1/calls/export.csv", headers=owner.headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text, newline="")))
    assert len(rows) == len(FORMULAS)
    _assert_no_formula([v for row in rows for v in row.values()])
    # Agent names are trimmed on the way in ("\t=1+2" is stored as "=1+2"); campaign ids keep the tab/CR.
    assert {r["campaign_id"] for r in rows} == {"'" + f for f in FORMULAS}
    assert {r["agent_name"] for r in rows} == {"'" + f.strip() for f in FORMULAS}


async def test_campaign_exports_neutralise_every_formula_prefix(client: httpx.AsyncClient) -> None:
    owner = await register(client, "csv-report")
    cid = await _campaign(client, owner)
    header = ["phone"] + [f"v{i}" for i in range(len(FORMULAS))]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerow(["+14155552671", *FORMULAS])
    resp = await client.post(f"/api/v1/campaigns/{cid}/contacts", headers=owner.headers,
                             **_upload(out.getvalue().encode()))
    assert resp.status_code == 201, resp.text
    report = await client.get(f"/api/v1/campaigns/{cid}/report.csv", headers=owner.headers)
    assert report.status_code == 200
    rows = list(csv.DictReader(io.StringIO(report.text, newline="")))
    assert len(rows) == 1
    _assert_no_formula(list(rows[0].values()))
    assert [rows[0][f"v{i}"] for i in range(len(FORMULAS))] == ["'" + f.strip() for f in FORMULAS]
    # The import-errors export of a rejected file (its rows echo the caller's cells).
    bad = "phone,note\n" + "".join(f'"{f.replace(chr(34), chr(34) * 2)}",x\n' for f in FORMULAS)
    rejected = await client.post(f"/api/v1/campaigns/{cid}/contacts", headers=owner.headers,
                                 **_upload(bad.encode()))
    assert rejected.status_code == 422, rejected.text
    errors = await client.get(f"{rejected.headers['location']}/errors.csv", headers=owner.headers)
    assert errors.status_code == 200
    _assert_no_formula(_cells(errors.text))
