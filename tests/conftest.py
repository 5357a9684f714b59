"""Shared test configuration: one Hypothesis profile for the whole suite.

Property tests must not flake on a loaded 2-core CI machine: no per-example deadline (a
stalled scheduler is not a bug), and data generation that is merely slow is no failure.
``HYPOTHESIS_PROFILE=thorough`` runs ten times as many examples.
"""

from __future__ import annotations

import os

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
