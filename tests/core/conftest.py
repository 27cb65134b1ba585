"""Fixtures of the core's tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest


def _calls(work: Callable[[], Any]) -> int:
    """The function calls (Python and builtin) ``work()`` makes: a cost measure the machine's load does not change."""
    count = 0

    def hook(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        work()
    finally:
        sys.setprofile(previous)
    return count


@pytest.fixture
def calls() -> Callable[[Callable[[], Any]], int]:
    """``calls(work)``: how many function calls ``work()`` makes (for linear-cost tests, instead of timings)."""
    return _calls
