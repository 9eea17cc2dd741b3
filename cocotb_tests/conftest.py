"""Shared test fixtures: the random seed (SEED honoured and logged) and simulator set-up."""

import os
import random

import numpy as np
import pytest

from flow import toolchain


@pytest.fixture
def seed(request):
    """SEED from the environment, else a fresh one; printed so a failure can be replayed."""
    value = int(os.environ.get("SEED", random.randrange(2**32)))
    print(f"{request.node.nodeid}: SEED={value}")
    return value


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@pytest.fixture(scope="session", autouse=True)
def simulators_on_path():
    toolchain.prepare()
