"""Argument types shared by the `simfl` command's subcommands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A whole number in [1, 10^9]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10**9:
        raise argparse.ArgumentTypeError(f"must be in [1, 1000000000], got {value}")
    return value


__all__ = ["positive_int"]
