"""Shared test configuration: one Hypothesis profile for the whole suite, the longest first.

Property tests must not flake on a loaded 2-core CI machine: no per-example deadline (a
stalled scheduler is not a bug), and data generation that is merely slow is no failure.
``HYPOTHESIS_PROFILE=thorough`` runs ten times as many examples.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "upbit-ws",
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("thorough", settings.get_profile("upbit-ws"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "upbit-ws"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the 60 s soak first: ``make test`` runs on two workers (pytest-xdist), and a run
    that reached the soak last would spend its final minute on one core with the other idle.
    The two soak tests share one run (a module fixture): the ``short_soak`` xdist group keeps
    them on one worker, and ``--dist loadgroup`` in the Makefile honours it.
    """
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)
