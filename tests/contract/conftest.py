"""Fixtures of the contract tests."""

import pytest

from tests.support.api import Account, Api
from tests.support.deployments import Deployment


@pytest.fixture(scope="module")
async def shared_account(deployment: Deployment) -> Account:
    """One account for a module's cases that need any account: each login counts against the
    per-address brake, which the whole suite shares (it logs in from one address)."""
    return await Api(deployment).account()
