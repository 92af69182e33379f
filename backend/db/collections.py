"""Collection names and every index the backend relies on, declared in code and created at startup.

A note on the local database: FerretDB 1.x on SQLite only pushes a filter that is exactly ``{"_id": <value>}`` down
to SQLite; every other query scans the collection, and its updates are read-modify-write without a transaction.
So the hot paths here read and write single documents by ``_id``, "exactly once" decisions are unique-key inserts,
and shared documents have a single writer (see services/leader.py). The secondary indexes below are what a real
MongoDB (or FerretDB on PostgreSQL) uses for the remaining queries.
"""

from __future__ import annotations

import zlib
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from core.mongo import IndexSpec

Db = AsyncDatabase[dict[str, Any]]

ORGANIZATIONS = "organizations"
USERS = "users"
MEMBERSHIPS = "memberships"  # _id = "{org_id}:{user_id}"
SESSIONS = "sessions"  # one per login; refresh tokens rotate inside it (the "family")
REFRESH_TOKENS = "refresh_tokens"
TOKEN_USES = "token_uses"  # _id = what was consumed; a unique insert makes single use atomic
INVITATIONS = "invitations"
API_KEYS = "api_keys"
API_KEY_USAGE = "api_key_usage"  # _id = key id; kept apart so it never races a revocation
AGENTS = "agents"
AGENT_VERSIONS = "agent_versions"  # _id = "{agent_id}:v{version}"
AGENT_TEST_RUNS = "agent_test_runs"  # one agent test suite run (voicectl test-agent) against one agent version
PHONE_NUMBERS = "phone_numbers"
NUMBER_ROUTES = "number_routes"  # _id = E.164; which organisation's number gets its calls (verified owners only)
CARRIER_CREDENTIALS = "carrier_credentials"  # _id = "{org_id}:{carrier}"
CALLS = "calls"  # _id = call id; calls queued or in progress (small: updated while the call runs)
CALLS_ARCHIVE = "calls_archive"  # _id = call id; ended calls, inserted once when they end
CALL_TRANSCRIPTS = "call_transcripts"  # _id = call id; inserted when the call ends
CALL_RECORDINGS = "call_recordings"  # _id = call id; recordings registered after their call ended
CALL_TURNS = "call_turns"  # _id = event id; one per turn, for search and latency analytics
CALL_EVENTS = "call_events"  # _id = event id; the permanent idempotency log (read by _id only: no other index)
OUTBOX = "outbox"  # _id = event id; accepted events ready to apply (read in batches with no filter, see below)
# Each outbox document names its lane, a hash of its call (or organisation) into OUTBOX_LANES parts. An applier that
# fell behind reads and deletes one lane at a time (services/call_projection.py): FerretDB 1.x pushes an equality
# down to PostgreSQL (served by the lane index's GIN twin) but not `$in`, so the delete of a batch's applied events
# by `_id` alone reads the whole outbox, and a backlog made every batch dearer until it fed itself.
OUTBOX_LANES = 16
# _id = event id; events waiting for their call to start, with retry_at. Kept apart so the outbox read needs no
# filter: FerretDB 1.x pushes a LIMIT down to its database only for a find without one (a filtered find reads every
# match, or on SQLite the whole collection, however long the backlog).
OUTBOX_DEFERRED = "outbox_deferred"
DEAD_LETTERS = "dead_letters"
CALL_LOG_PAGES = "call_log_pages"  # _id = "{org_id}:{page:010d}"; the call list read model (newest pages: hot)
CALL_LOG_PAGES_ARCHIVE = "call_log_pages_archive"
CALL_LOG_HEADS = "call_log_heads"  # _id = org id
CALL_LOG_INDEX = "call_log_index"  # _id = call id -> page/slot
WEBHOOKS = "webhooks"
WEBHOOK_QUEUE = "webhook_queue"  # pending deliveries only
WEBHOOK_DELIVERIES = "webhook_deliveries"  # the delivery log
LEASES = "leases"
RATE_LIMITS = "rate_limits"
AUDIT_LOG = "audit_log"
KNOWLEDGE_BASES = "knowledge_bases"
KNOWLEDGE_SOURCES = "knowledge_sources"  # one per document; its chunks live in the vector store (core/knowledge)
KNOWLEDGE_VERSIONS = "knowledge_versions"  # _id = org id; bumped after each change to its table (knowledge/versions.py)
CALL_ANALYSES = "call_analyses"  # _id = call id; post-call analysis, queued when the call ends
ORG_BILLING = "org_billing"  # _id = org id: price-book overrides and the monthly budget
ORG_SPEND = "org_spend"  # _id = "{org_id}:{YYYY-MM}" running spend; "call:{id}" once per counted call
ORG_SECRETS = "org_secrets"  # _id = "{org_id}:{name}"; values AES-GCM encrypted (services/secrets.py)
ERASED_CALLS = "erased_calls"  # _id = call id; tombstones: late events for an erased call are dropped
ERASURES = "erasures"  # _id = "erase:{scope}:{call id}"; what was deleted, when and why (no personal data)

INDEXES: list[IndexSpec] = [
    IndexSpec(AGENT_TEST_RUNS, [("agent_id", 1), ("created_at", -1)], name="agent_test_runs_agent"),
    IndexSpec(USERS, [("email", 1)], unique=True, name="users_email_unique"),
    IndexSpec(MEMBERSHIPS, [("user_id", 1)], name="memberships_user"),
    IndexSpec(MEMBERSHIPS, [("org_id", 1), ("created_at", 1)], name="memberships_org"),
    IndexSpec(SESSIONS, [("user_id", 1)], name="sessions_user"),
    IndexSpec(REFRESH_TOKENS, [("session_id", 1)], name="refresh_tokens_session"),
    IndexSpec(INVITATIONS, [("org_id", 1), ("created_at", -1)], name="invitations_org"),
    IndexSpec(API_KEYS, [("org_id", 1), ("created_at", -1)], name="api_keys_org"),
    IndexSpec(TOKEN_USES, [("at", 1)], name="token_uses_at"),
    IndexSpec(AGENTS, [("org_id", 1), ("updated_at", -1)], name="agents_org"),
    IndexSpec(AGENT_VERSIONS, [("agent_id", 1), ("version", -1)], unique=True, name="agent_versions_agent"),
    # Unique per organisation only: an unverified claim must not block the number's real owner (its calls route by
    # NUMBER_ROUTES, written once the carrier confirmed ownership). Deployments from before: drop
    # phone_numbers_number_unique.
    IndexSpec(PHONE_NUMBERS, [("org_id", 1), ("number", 1)], unique=True, name="phone_numbers_org_number_unique"),
    IndexSpec(PHONE_NUMBERS, [("org_id", 1), ("created_at", -1)], name="phone_numbers_org"),
    IndexSpec(CARRIER_CREDENTIALS, [("org_id", 1)], name="carrier_credentials_org"),
    IndexSpec(CALLS, [("org_id", 1), ("created_at", -1)], name="calls_org_created"),
    IndexSpec(CALLS, [("org_id", 1), ("day", 1)], name="calls_org_day"),
    IndexSpec(CALLS_ARCHIVE, [("org_id", 1), ("created_at", -1)], name="calls_archive_org_created"),
    IndexSpec(CALLS_ARCHIVE, [("org_id", 1), ("day", 1)], name="calls_archive_org_day"),
    IndexSpec(CALL_LOG_PAGES, [("org_id", 1), ("page", 1)], name="call_log_pages_org"),
    IndexSpec(CALL_TURNS, [("org_id", 1), ("day", 1), ("v2v_ms", 1)], name="call_turns_latency"),
    IndexSpec(CALL_TURNS, [("org_id", 1), ("call_id", 1)], name="call_turns_call"),
    IndexSpec(OUTBOX, [("lane", 1)], name="outbox_lane"),
    IndexSpec(OUTBOX_DEFERRED, [("call_id", 1)], name="outbox_deferred_call"),
    IndexSpec(DEAD_LETTERS, [("received_at", -1)], name="dead_letters_received"),
    IndexSpec(CALL_LOG_INDEX, [("org_id", 1)], name="call_log_index_org"),
    IndexSpec(WEBHOOKS, [("org_id", 1), ("created_at", -1)], name="webhooks_org"),
    IndexSpec(WEBHOOK_QUEUE, [("next_attempt_at", 1)], name="webhook_queue_due"),
    IndexSpec(WEBHOOK_DELIVERIES, [("webhook_id", 1), ("created_at", -1)], name="webhook_deliveries_webhook"),
    IndexSpec(RATE_LIMITS, [("expires_at", 1)], name="rate_limits_expiry"),
    IndexSpec(LEASES, [("created_at", 1)], name="leases_created"),
    IndexSpec(AUDIT_LOG, [("org_id", 1), ("at", -1)], name="audit_log_org"),
    IndexSpec(KNOWLEDGE_BASES, [("org_id", 1), ("created_at", -1)], name="knowledge_bases_org"),
    IndexSpec(KNOWLEDGE_SOURCES, [("kb_id", 1), ("name", 1)], unique=True, name="knowledge_sources_kb_name"),
    IndexSpec(KNOWLEDGE_SOURCES, [("status", 1), ("next_attempt_at", 1)], name="knowledge_sources_due"),
    IndexSpec(CALL_ANALYSES, [("status", 1), ("next_at", 1)], name="call_analyses_due"),
    IndexSpec(CALL_ANALYSES, [("org_id", 1), ("success", 1)], name="call_analyses_success"),
    IndexSpec(ORG_SPEND, [("org_id", 1), ("day", 1)], name="org_spend_day"),
    IndexSpec(ORG_SECRETS, [("org_id", 1), ("name", 1)], name="org_secrets_org"),
    IndexSpec(ERASURES, [("org_id", 1), ("at", -1)], name="erasures_org"),
]


def outbox_lane(key: str) -> int:
    """The outbox lane of a call id (or, for organisation events, an organisation id): stable across processes and
    releases, so every event of a call lands in the same lane."""
    return zlib.crc32(key.encode()) % OUTBOX_LANES
