"""`python -m regdemo runs ...`: list and export saved runs."""

from __future__ import annotations


def register(sub) -> None:
    """Add this command's parser to the `python -m regdemo` subparsers (not written yet)."""
