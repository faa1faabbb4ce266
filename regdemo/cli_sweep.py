"""`python -m regdemo sweep ...`: sweep one knob and write a CSV."""

from __future__ import annotations


def register(sub) -> None:
    """Add this command's parser to the `python -m regdemo` subparsers (not written yet)."""
