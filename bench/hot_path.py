"""The order service's per-request token and user checks, timed in-process.

A remembered token's verification, the cache-hit user verification and the use case's
check, in a loop: the pieces the sessions change (issue 12) touched. Runs on whatever tree
is first on the path, so two trees compare with the same script:

    PYTHONPATH=/tmp/base .venv/bin/python bench/hot_path.py
    PYTHONPATH=. .venv/bin/python bench/hot_path.py
"""

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from contracts import CachedUser, user_cache_key
from order_service.adapters.user_verifier import CachedBusUserVerifier
from order_service.services.order_service import ensure_user_may_act
from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.tokens import StaticKeySource, TokenVerifier
from user_service.core.auth import TokenIssuer, load_or_create_dev_key


async def main() -> None:
    key = load_or_create_dev_key(Path(tempfile.mkdtemp()))
    issuer = TokenIssuer(key, issuer="i", audience="a", ttl_seconds=900)
    verifier = TokenVerifier(StaticKeySource({key.kid: key.public_key}), issuer="i", audience="a")
    user_id = uuid.uuid4()
    token = issuer.issue(user_id, client_id="c")
    cache = InMemoryCache()
    await cache.set_if_newer(
        user_cache_key(user_id),
        CachedUser(id=user_id, email="a@example.com", active=True, version=1)
        .model_dump_json()
        .encode(),
        1,
        3600,
    )
    users = CachedBusUserVerifier(cache, InMemoryBus(), timeout=0.5)
    await verifier.verify(token)
    n = 50_000
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            await verifier.verify(token)
            await ensure_user_may_act(users, user_id)
        best = min(best, (time.perf_counter() - t) / n)
    print(f"remembered token + cache-hit verification + check: {best * 1e6:.2f} us")


asyncio.run(main())
