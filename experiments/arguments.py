"""Argument types shared by the command line's subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(minimum: int, meaning: str = "") -> Callable[[str], int]:
    """An argparse ``type`` accepting integers ``>= minimum``; ``meaning`` is added to the error (e.g. "0 skips")."""

    def parse(text: str) -> int:
        extra = f" ({meaning})" if meaning else ""
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number{extra}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}{extra}, got {value}")
        return value

    return parse
