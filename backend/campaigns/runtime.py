"""The campaign components of one backend process, built once at startup (backend/main.py lifespan) or by a
standalone dialer (__main__.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from backend.campaigns.attempts import AttemptFinalizer
from backend.campaigns.backend_sink import BackendCallSink
from backend.campaigns.callbacks import CallbackService, CallbackUrls
from backend.campaigns.clock import Clock, SystemClock
from backend.campaigns.coordination import Coordination
from backend.campaigns.dialer import Dialer
from backend.campaigns.dnc import DncService
from backend.campaigns.lost_calls import LostCallRelease
from backend.campaigns.service import CampaignService
from backend.campaigns.signals import CampaignSignals
from backend.campaigns.single_calls import SingleCallService
from backend.services.container import Services
from telephony.registry import CarrierClients

log = logging.getLogger(__name__)


class CampaignRuntime:
    def __init__(self, services: Services, clock: Clock | None = None) -> None:
        logging.getLogger("twilio.async_http_client").setLevel(logging.WARNING)  # request headers at INFO
        settings = services.settings
        db = services.db
        self.clock: Clock = clock or SystemClock()
        self.signals = CampaignSignals()
        self.coord = Coordination(db)
        self.carriers = CarrierClients()
        self.calls = BackendCallSink(services)
        self.finalizer = AttemptFinalizer(db, self.coord, self.clock, self.calls, self.signals)
        services.call_leases.on_lost.append(LostCallRelease(db, self.finalizer))  # voice server died mid-call
        secret = (settings.campaign_callback_secret.get_secret_value()
                  or settings.service_token_secret.get_secret_value())
        self.urls = CallbackUrls(settings.campaign_callback_base_url or settings.public_base_url, secret)
        self.callbacks = CallbackService(db, self.coord, self.finalizer, self.urls, self.carriers,
                                         services.carriers.decrypted, self.clock,
                                         services.live_control.relay_machine_detection)
        self.campaigns = CampaignService(db, settings, self.clock, self.signals, self.coord, services.audit,
                                         self.calls)
        self.dnc = DncService(db, settings, services.audit)
        self.dialer = Dialer(db, settings, clock=self.clock, calls=self.calls, carriers=self.carriers,
                             finalizer=self.finalizer, urls=self.urls,
                             answer_base_url=settings.campaign_answer_base_url or settings.voice_server_url,
                             signals=self.signals, over_budget=services.billing.over_budget)
        self.single_calls = SingleCallService(services, settings, self.clock, self.calls, self.carriers,
                                              settings.campaign_answer_base_url or settings.voice_server_url,
                                              self.coord)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start_dialer(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self.dialer.run(self._stop), name="campaign-dialer")

    async def stop_dialer(self) -> None:
        if self._task is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def close(self) -> None:
        await self.stop_dialer()
        await self.carriers.close()
