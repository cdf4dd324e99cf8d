"""Each service's own app (its own OpenAPI document), built in this process with in-memory
adapters: what the distributed deployment serves on 8001 and 8002, minus Redis and Postgres.

The order service's app also builds a user service behind its in-memory bus (not exposed),
so that user verification is answered; both apps share one data folder, hence one user
database and one signing key, and a token from the user app works on the order app.
"""

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from order_service.main import Adapters as OrderAdapters
from order_service.main import create_app as create_order_app
from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.ratelimit import InMemoryRateLimiter
from servicekit.tokens import StaticKeySource
from tests.support.deployments import single_process_settings
from user_service.core.auth import load_or_create_dev_key
from user_service.main import Adapters as UserAdapters
from user_service.main import build_user_service
from user_service.main import create_app as create_user_app


def user_service_app(data_dir: Path, **overrides: Any) -> FastAPI:
    settings, _ = single_process_settings(data_dir, **overrides)
    return create_user_app(settings, adapters=UserAdapters.in_process())


def order_service_app(data_dir: Path, **overrides: Any) -> FastAPI:
    """The order service's app with a user service beside it, answering on the in-process
    bus; the user service's development key (in the shared data folder) verifies tokens."""
    user_settings, settings = single_process_settings(data_dir, **overrides)
    bus, cache = InMemoryBus(), InMemoryCache()
    key = load_or_create_dev_key(data_dir)
    return create_order_app(
        settings,
        adapters=OrderAdapters(
            cache=cache,
            bus=bus,
            keys=StaticKeySource({key.kid: key.public_key}),
            beside=lambda: build_user_service(
                user_settings, cache=cache, bus=bus, limiter=InMemoryRateLimiter()
            ),
        ),
    )
