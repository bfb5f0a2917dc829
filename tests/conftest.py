import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests never reach a model or data hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


def quiet(*overrides: str) -> list[str]:
    """Overrides that keep a test run silent."""
    return ["log.progress=false", *overrides]
