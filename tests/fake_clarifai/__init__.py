"""In-process fake of Clarifai's V2 gRPC API for segcli's tests and benchmarks.

In conftest.py, `fake_clarifai = make_fixture()` gives tests a `fake_clarifai` fixture (a
started FakeClarifai, stopped afterwards); `make_fixture(name=..., scope=..., **knobs)` makes
others. Outside pytest, `with fake_clarifai_server(**knobs) as fake:` does the same.

See server.py for the knobs and state.py for what tests can inspect.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .masks import expected_masks
from .protos import C
from .server import HANDLED, FakeClarifai, is_mutating
from .training import POLLS, SECONDS, TrainingPlan


@contextmanager
def fake_clarifai_server(**knobs) -> Iterator[FakeClarifai]:
    """Start a FakeClarifai(**knobs) on a free loopback port; stop it on exit."""
    fake = FakeClarifai(**knobs)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def make_fixture(name: str = "fake_clarifai", scope: str = "function", **knobs):
    """A pytest fixture yielding a running FakeClarifai(**knobs); assign it in a conftest."""
    import pytest

    @pytest.fixture(name=name, scope=scope)
    def _fake_clarifai():
        with fake_clarifai_server(**knobs) as fake:
            yield fake

    return _fake_clarifai


__all__ = [
    "C",
    "FakeClarifai",
    "HANDLED",
    "POLLS",
    "SECONDS",
    "TrainingPlan",
    "expected_masks",
    "fake_clarifai_server",
    "is_mutating",
    "make_fixture",
]
