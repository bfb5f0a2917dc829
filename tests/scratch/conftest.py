"""Shared fixtures for the from-scratch tests; makes ``src/`` importable when not installed."""

import importlib.util
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("zerotune") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from zerotune.scratch.data import load_table, split  # noqa: E402


@pytest.fixture(scope="session")
def diabetes_split():
    """Standardised diabetes, the default seeded 75/25 split."""
    t = load_table("diabetes")
    return split(t.X, t.y, test_size=0.25, seed=0)


@pytest.fixture(scope="session")
def digits_split():
    t = load_table("digits")
    return split(t.X, t.y, test_size=0.25, seed=0, stratify=True)
