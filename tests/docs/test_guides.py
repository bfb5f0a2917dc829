"""Facts the guides state that the code can check: the model table names every registered model, and the
config reference is the one scripts/config_reference.py generates from the schema."""

import re
import runpy
from pathlib import Path

from zerotune.models.registry import list_models

ROOT = Path(__file__).resolve().parents[2]


def _section(page: Path, title: str) -> str:
    text = page.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_training_guide_model_table_lists_every_registered_model():
    rows = [line for line in _section(ROOT / "docs" / "training.md", "Models").splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([a-z_0-9]+)`", row.split("|")[1])}
    assert documented == {m.name for m in list_models()}


def test_training_guide_config_reference_is_what_the_script_prints():
    script = runpy.run_path(str(ROOT / "scripts" / "config_reference.py"))
    section = _section(ROOT / "docs" / "training.md", "Config reference")
    assert section.endswith(script["reference"]()), "regenerate it: python scripts/config_reference.py"
    assert "\n### `sft`\n" in section and "\n### `preference`\n" in section
