"""The campaign collections and their indexes (created at backend startup with the backend's own).

Hot-path documents have chosen `_id`s so that reads are by `_id` and "exactly one" decisions are duplicate-key
inserts (see the package docstring). The secondary indexes serve the list/report queries on a real MongoDB.
"""

from __future__ import annotations

import hashlib

from core.mongo import IndexSpec

CAMPAIGNS = "campaigns"
CONTACTS = "campaign_contacts"  # _id = contact_id(campaign, phone): a second copy of a number is a duplicate key
IMPORTS = "campaign_imports"  # one per CSV upload; contacts of an import count only once it is committed
ATTEMPTS = "campaign_attempts"  # _id = "{contact_id}-{n}": dial attempt n can be claimed once, ever
LEASES = "campaign_leases"  # _id = contact_id: whoever holds it may write the contact; lives while its call lives
SLOTS = "campaign_slots"  # _id = "{scope}:{n}", n < cap: one per live call per scope (campaign, organisation)
RATE_TOKENS = "campaign_rate_tokens"  # _id = "{campaign_id}:{tick}": one dial per 1/cps seconds
MARKS = "campaign_marks"  # _id = "{attempt_id}:{kind}": fate, placed, amd, voicemail, final
CALL_EVENTS = "campaign_call_events"  # raw carrier callbacks, insert-only (audit and debugging)
DIALERS = "campaign_dialers"  # _id = dialer id: heartbeats
ORG_SETTINGS = "campaign_org_settings"  # _id = org id
DNC = "dnc_numbers"  # _id = "{org_id}:{e164}"
CALL_REQUESTS = "call_requests"  # _id = call id from (org, Idempotency-Key): one dial per key, ever
LOCKS = "campaign_locks"  # _id = "{what}:{id}": short exclusive sections (one import per campaign at a time)

INDEXES: list[IndexSpec] = [
    IndexSpec(CAMPAIGNS, [("org_id", 1), ("created_at", -1)], name="campaigns_org"),
    IndexSpec(CAMPAIGNS, [("status", 1)], name="campaigns_status"),
    IndexSpec(CONTACTS, [("campaign_id", 1), ("status", 1), ("next_attempt_at", 1)], name="contacts_due"),
    IndexSpec(CONTACTS, [("campaign_id", 1), ("row", 1)], name="contacts_row"),
    IndexSpec(CONTACTS, [("import_id", 1)], name="contacts_import"),
    IndexSpec(IMPORTS, [("campaign_id", 1), ("created_at", -1)], name="imports_campaign"),
    IndexSpec(ATTEMPTS, [("campaign_id", 1), ("claimed_at", 1)], name="attempts_campaign"),
    IndexSpec(LEASES, [("campaign_id", 1)], name="leases_campaign"),
    IndexSpec(SLOTS, [("scope", 1)], name="slots_scope"),
    IndexSpec(RATE_TOKENS, [("at", 1)], name="rate_tokens_at"),
    IndexSpec(MARKS, [("campaign_id", 1), ("kind", 1)], name="marks_campaign"),
    IndexSpec(CALL_EVENTS, [("attempt_id", 1)], name="call_events_attempt"),
    IndexSpec(DNC, [("org_id", 1), ("created_at", -1)], name="dnc_org"),
]


def contact_id(campaign_id: str, phone: str) -> str:
    """Deterministic and opaque: dedup by (campaign, number) is a duplicate `_id`, and ids do not show numbers."""
    return hashlib.sha256(f"{campaign_id}|{phone}".encode()).hexdigest()[:32]


def attempt_id(contact: str, attempt: int) -> str:
    return f"{contact}-{attempt}"  # URL-safe: it goes into callback paths


def mark_id(attempt: str, kind: str) -> str:
    return f"{attempt}:{kind}"


def dnc_id(org_id: str, phone: str) -> str:
    return f"{org_id}:{phone}"
