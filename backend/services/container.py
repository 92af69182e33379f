"""All services of one backend process, built once at startup and reached from routes through api/deps.py."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from backend.campaigns.call_requests import ApiCallRequests
from backend.campaigns.coordination import Coordination, api_attempt_id
from backend.config import BackendSettings
from backend.db.collections import Db
from backend.knowledge.ingestion import IngestionWorker
from backend.knowledge.service import KnowledgeService
from backend.security.crypto import SecretBox
from backend.security.passwords import Passwords
from backend.security.principal_cache import PrincipalCache
from backend.services.agent_test_runs import AgentTestRunService
from backend.services.agents import AgentService
from backend.services.analytics import AnalyticsService
from backend.services.audit import AuditLog
from backend.services.auth import AuthService
from backend.services.billing import BillingService
from backend.services.browser_calls import BrowserCallService
from backend.services.call_analysis import CallAnalyzer
from backend.services.call_deletion import CallDeletionService, ErasureQueue
from backend.services.call_event_ingest import CallEventIngest
from backend.services.call_history import CallHistoryService
from backend.services.call_leases import CallLeases
from backend.services.call_log import CallLog
from backend.services.call_projection import OutboxProcessor
from backend.services.call_routing import CallRoutingService
from backend.services.carriers import CarrierCredentialService
from backend.services.erasure import Eraser
from backend.services.leader import Leadership
from backend.services.live_calls import LiveCalls
from backend.services.live_control import LiveControl
from backend.services.live_interims import InterimRelay
from backend.services.orgs import OrgService
from backend.services.persona_llm import PersonaLlm
from backend.services.phone_numbers import PhoneNumberService
from backend.services.rate_limit import RateLimiter
from backend.services.retention import RetentionService
from backend.services.secrets import SecretService
from backend.services.simulated_caller import SimulatedCaller
from backend.services.voices import VoiceService
from backend.services.webhooks import WebhookDispatcher, WebhookService
from backend.services.workers import BackgroundLoops, Housekeeping, Loop
from core.egress import guarded_client
from core.knowledge.embeddings import EmbeddingsClient
from core.knowledge.retriever import Retriever
from core.knowledge.store import KnowledgeStore
from core.service_auth import ServiceTokenSource
from core.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: BackendSettings
    db: Db
    store: ObjectStore
    http: httpx.AsyncClient
    tenant_http: httpx.AsyncClient
    passwords: Passwords
    limiter: RateLimiter
    audit: AuditLog
    secrets: SecretService
    analyzer: CallAnalyzer
    billing: BillingService
    auth: AuthService
    orgs: OrgService
    carriers: CarrierCredentialService
    agents: AgentService
    numbers: PhoneNumberService
    call_log: CallLog
    call_history: CallHistoryService
    ingest: CallEventIngest
    processor: OutboxProcessor
    webhooks: WebhookService
    dispatcher: WebhookDispatcher
    analytics: AnalyticsService
    call_routing: CallRoutingService
    leadership: Leadership
    voices: VoiceService
    browser_calls: BrowserCallService
    agent_test_runs: AgentTestRunService
    call_leases: CallLeases
    knowledge: KnowledgeService
    ingestion: IngestionWorker
    call_deletion: CallDeletionService
    retention: RetentionService
    live: LiveCalls
    live_control: LiveControl
    loops: BackgroundLoops | None = None  # started by start_background()

    @classmethod
    def build(cls, settings: BackendSettings, db: Db, store: ObjectStore) -> Services:
        box = SecretBox(settings.encryption_key.get_secret_value())
        passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
        limiter = RateLimiter(db)
        principals = PrincipalCache(settings.auth_cache_ttl_s)
        audit = AuditLog(db)
        http = httpx.AsyncClient(follow_redirects=False, timeout=settings.webhook_timeout_s)
        # Tenants' URLs (webhook deliveries) only through the egress guard; `http` is for the platform's services.
        tenant_http = guarded_client(settings.egress_policy(), timeout=settings.webhook_timeout_s)
        secrets = SecretService(db, box, audit)
        agents = AgentService(db, audit, settings.egress_policy(), secrets)
        carriers = CarrierCredentialService(db, box, audit, settings.carrier_api_base_url)
        numbers = PhoneNumberService(db, audit, carriers, http)
        leadership = Leadership(db, "workers", settings.leader_window_s)
        call_log = CallLog(db, leadership)
        webhooks = WebhookService(db, settings, box, audit)
        # The speech servers' (and the voice server's) credential; each organisation's voices get their own token.
        tokens = ServiceTokenSource(settings.service_token_secret.get_secret_value(), "backend")
        analyzer = CallAnalyzer(db, settings, http, tokens)
        billing = BillingService(db, settings.price_book, audit)
        coordination = Coordination(db)
        api_requests = ApiCallRequests(db)

        async def on_call_event(org_id: str, event_type: str, event_id: str, data: dict[str, Any], at: Any) -> None:
            if event_type == "call.ended":  # the cost, from the final usage: in the webhook and the month's spend
                data = {**data, "cost": (await billing.on_call_ended(org_id, data)).model_dump()}
            # A call placed through POST /api/v1/calls may name a webhook of its own.
            request = await api_requests.of_call(str(data.get("id") or data.get("call_id") or ""),
                                                 inbound=data.get("direction") == "inbound"
                                                 ) if event_type.startswith("call.") else None
            await webhooks.fan_out(org_id, event_type, event_id, data, at,
                                   also=request.webhook_id if request is not None else None)
            if request is not None and event_type == "call.ended":  # its organisation slot (single_calls.py)
                await coordination.release_attempt_slots(api_attempt_id(request.call_id))
            await analyzer.after_event(org_id, event_type, event_id, data, at)

        analyzer.on_analyzed = on_call_event
        processor = OutboxProcessor(db, call_log, on_call_event, leadership, batch_size=settings.outbox_batch_size,
                                    eraser=Eraser(db, store, call_log), lane_reads=settings.outbox_lane_reads)
        holder: dict[str, Services] = {}

        async def on_accepted(event_ids: list[str], wait: bool) -> None:
            await holder["services"].events_accepted(event_ids, wait)

        ingest = CallEventIngest(db, settings.s3_bucket_recordings, on_accepted)

        async def on_call_created(doc: dict[str, Any], wait: bool) -> None:
            await ingest.touch(str(doc["_id"]), wait)

        knowledge_blobs = ObjectStore(settings)
        knowledge_blobs.bucket = settings.s3_bucket_knowledge
        vectors = KnowledgeStore(*settings.knowledge_location())
        embeddings = EmbeddingsClient(http, settings.embeddings_base_url, settings.embeddings_model,
                                      lambda: tokens.platform_key(settings.embeddings_key()),
                                      settings.embeddings_timeout_s)
        erasures = ErasureQueue(db, on_accepted)
        call_routing = CallRoutingService(db, agents, numbers, carriers, secrets, call_log,
                                          on_call_created)
        call_routing.billing = billing
        voices = VoiceService(settings.tts_url, http, settings.voice_sample_max_chars, tokens.secret)
        browser_calls = BrowserCallService(db, settings, call_routing, on_call_created)
        call_history = CallHistoryService(db, store, call_log, settings.recording_url_ttl_s, billing)
        services = cls(
            settings=settings, db=db, store=store, http=http, passwords=passwords, limiter=limiter, audit=audit,
            secrets=secrets, analyzer=analyzer, billing=billing,
            auth=AuthService(db, settings, passwords, limiter, audit, principals),
            orgs=OrgService(db, settings, audit, principals),
            carriers=carriers, agents=agents, numbers=numbers, call_log=call_log,
            ingest=ingest,
            processor=processor,
            webhooks=webhooks, dispatcher=WebhookDispatcher(db, settings, box, tenant_http), tenant_http=tenant_http,
            analytics=AnalyticsService(db), call_routing=call_routing,
            leadership=leadership,
            voices=voices, browser_calls=browser_calls, call_history=call_history,
            agent_test_runs=AgentTestRunService(db, agents, SimulatedCaller(
                settings, browser_calls, voices, call_history, PersonaLlm(settings, http))),
            call_leases=CallLeases(db, ingest, orphan_after_s=settings.call_orphan_after_s),
            knowledge=KnowledgeService(db, knowledge_blobs, vectors, Retriever(embeddings, vectors), audit,
                                       settings.knowledge_max_upload_bytes),
            ingestion=IngestionWorker(db, knowledge_blobs, embeddings, vectors,
                                      max_attempts=settings.knowledge_ingest_attempts,
                                      backoff_s=settings.knowledge_retry_backoff_s),
            call_deletion=CallDeletionService(db, erasures, audit),
            retention=RetentionService(db, erasures, audit),
            live=LiveCalls(db, interims=InterimRelay(db, http, settings.service_token_secret.get_secret_value())),
            live_control=LiveControl(db, http, audit, settings.service_token_secret.get_secret_value()),
        )
        holder["services"] = services
        processor.on_applied = services.live.notify
        return services

    def start_background(self) -> None:
        s = self.settings
        housekeeping = Housekeeping([self.limiter.purge_expired, self.auth.purge_token_uses, self.retention.sweep])
        archiving = Housekeeping([self.processor.archive_old_pages], every_s=s.archive_interval_s)
        self.loops = BackgroundLoops(
            outbox=Loop("outbox-processor", self.processor.run_once, self.leadership, s.worker_poll_interval_s),
            webhooks=Loop("webhook-dispatcher", self.dispatcher.run_once, self.leadership, s.worker_poll_interval_s),
            housekeeping=Loop("housekeeping", housekeeping.step, self.leadership, 30.0),
            archiving=Loop("archiving", archiving.step, self.leadership, s.archive_interval_s),
            lease_reaper=Loop("call-lease-reaper", self.call_leases.reap_once, self.leadership,
                              s.call_lease_check_interval_s),
            analysis=Loop("call-analysis", self.analyzer.run_once, self.leadership, 1.0),
            knowledge=Loop("knowledge-ingestion", self.ingestion.run_once, self.leadership, 2.0),
            agent_tests=Loop("agent-tests", self.agent_test_runs.run_once, self.leadership, 5.0),
        )
        for loop in self.loops.all():
            loop.start()
        self.webhooks.on_queued = self.loops.webhooks.kick
        self.knowledge.on_queued = self.loops.knowledge.kick
        self.agent_test_runs.on_queued = self.loops.agent_tests.kick

    async def events_accepted(self, event_ids: list[str], wait: bool = True) -> None:
        """Wakes the processor; with `wait`, on the leader, waits (bounded) until these events are applied, so a
        caller that reads right after writing sees its own writes."""
        wait_s = self.settings.event_apply_wait_s if wait else 0
        leading = wait_s > 0 and await self.leadership.is_leader()
        futures = self.processor.watch(event_ids) if leading else []
        if self.loops is not None:
            self.loops.outbox.kick()
        if futures:
            try:
                await asyncio.wait_for(asyncio.gather(*futures), wait_s)
            except TimeoutError:
                pass  # stored durably; applied a little later
            finally:
                self.processor.forget(event_ids)

    async def close(self) -> None:
        for loop in self.loops.all() if self.loops is not None else []:
            await loop.stop()
        await self.http.aclose()
        await self.tenant_http.aclose()
