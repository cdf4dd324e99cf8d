"""Fixtures shared by every test layer."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.deployments import DEPLOYMENTS, Deployment
from tests.support.distributed import needs_backing_services, require_backing_services

IN_CI = os.environ.get("CI") == "true"
SUITE_LOGINS_PER_ADDRESS = 100_000


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Without Postgres or redis-server: one skip line for all such tests (in CI: failures).
    if needs_backing_services(item):
        require_backing_services()


@pytest.fixture(scope="session", params=sorted(DEPLOYMENTS))
async def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    """A long-lived deployment per kind; tests use unique ids so they can share it. The whole
    suite logs in from one address: that brake is set out of its way here
    (``tests/contract/test_login_limits.py`` tests it on deployments of its own)."""
    folder: Path = tmp_path_factory.mktemp(f"deployment-{request.param}")
    async with DEPLOYMENTS[request.param](
        folder, login_max_attempts_per_address=SUITE_LOGINS_PER_ADDRESS
    ) as running:
        yield running


@pytest.fixture
def api(deployment: Deployment) -> Api:
    return Api(deployment)
