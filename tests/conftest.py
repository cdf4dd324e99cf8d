"""Fixtures shared by every test layer."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.deployments import DEPLOYMENTS, Deployment

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session", params=sorted(DEPLOYMENTS))
async def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    """A long-lived deployment per kind; tests use unique ids so they can share it."""
    folder: Path = tmp_path_factory.mktemp(f"deployment-{request.param}")
    async with DEPLOYMENTS[request.param](folder) as running:
        yield running


@pytest.fixture
def api(deployment: Deployment) -> Api:
    return Api(deployment)
