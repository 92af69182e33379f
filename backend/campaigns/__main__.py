"""A dialer on its own: `python -m backend.campaigns`. Same settings as the backend (MONGODB_URI, secrets ...);
as many as you like may run next to each other and next to dialers inside backend processes.
SIGTERM/SIGINT stop it gracefully: dials already under way finish, calls in progress keep their slots until the
carrier reports them ended (to whichever backend receives the callback)."""

from __future__ import annotations

import asyncio
import logging
import signal

from backend.campaigns.runtime import CampaignRuntime
from backend.config import BackendSettings
from backend.services.container import Services
from core.mongo import create_mongo_client
from core.storage import ObjectStore


async def main() -> None:
    # This process never applies call events itself (no background loops): it must not wait for, or compete in,
    # the backend replicas' leader election.
    settings = BackendSettings(event_apply_wait_s=0)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("twilio").setLevel(logging.WARNING)  # it logs every request's headers at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)
    mongo = create_mongo_client(settings)
    db = mongo[settings.mongodb_db]
    # Indexes are the backend's job at startup; the dialer's correctness rests on `_id` uniqueness alone.
    services = Services.build(settings, db, ObjectStore(settings))
    runtime = CampaignRuntime(services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.dialer.run(stop)
    finally:
        await runtime.carriers.close()
        await services.close()
        await mongo.close()


if __name__ == "__main__":
    asyncio.run(main())
