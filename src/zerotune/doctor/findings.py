"""A finding of `zerotune doctor`: what is wrong with a run, the numbers that show it, and what to change.

Findings are plain data: the rules build them, `format_text` and `to_json` show them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("high", "medium", "low", "info")  # most severe first


@dataclass
class Finding:
    """One diagnosis.

    Attributes:
        id: a stable name (``lr_too_high``, ``overfitting``, ...) that scripts can match.
        severity: high, medium, low or info.
        message: one sentence saying what is wrong.
        evidence: the tags, steps and numbers it rests on (JSON-ready).
        fixes: what to try, most likely first: ``--set group.field=value`` overrides to paste
            after ``zerotune train RECIPE``, or a command.
    """

    id: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fixes: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")


def set_fix(*overrides: str) -> str:
    """``--set a=1 --set b=2``: overrides as the flags a user pastes."""
    return " ".join(f"--set {o}" for o in overrides)


def by_severity(findings: list[Finding]) -> list[Finding]:
    """Most severe first; within a severity, in the order the rules found them."""
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def _round(value: Any) -> Any:
    """Numbers to 4 significant digits, so evidence reads well and compares stably."""
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def to_json(findings: list[Finding]) -> str:
    """``{"findings": [{"id", "severity", "message", "evidence", "fixes"}, ...]}``, most severe first.

    A non-finite number (a diverged loss) is written as a string such as ``"nan"``, which strict JSON allows.
    """
    def finite(v):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [finite(x) for x in v]
        return v

    rows = [finite(_round(asdict(f))) for f in by_severity(findings)]
    return json.dumps({"findings": rows}, indent=2, allow_nan=False)


def _evidence_text(evidence: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_round(v)}" for k, v in evidence.items())


def format_text(findings: list[Finding], run: str) -> str:
    """The findings as a terminal report: one block per finding, most severe first."""
    if not findings:
        return f"doctor: {run}: no findings"
    lines = [f"doctor: {run}: {len(findings)} finding{'s' if len(findings) > 1 else ''}"]
    for f in by_severity(findings):
        lines.append(f"{f.severity.upper():<6} {f.id}: {f.message}")
        if f.evidence:
            lines.append(f"       evidence: {_evidence_text(f.evidence)}")
        for fix in f.fixes:
            lines.append(f"       fix: {fix}")
    return "\n".join(lines)


def one_line(f: Finding) -> str:
    """``doctor medium: overfitting: ... (fix: --set ...)``: a finding as one line, for the end of `train`."""
    fix = f" (fix: {f.fixes[0]})" if f.fixes else ""
    return f"doctor {f.severity}: {f.id}: {f.message}{fix}"


def format_markdown(findings: list[Finding]) -> str:
    """The findings as a Markdown table, for TensorBoard's Text tab and the report."""
    if not findings:
        return "No findings: nothing in this run's curves looks wrong to `zerotune doctor`."
    rows = ["| severity | id | finding | evidence | fixes |", "|---|---|---|---|---|"]
    for f in by_severity(findings):
        cells = [f.severity, f"`{f.id}`", f.message, _evidence_text(f.evidence),
                 "<br>".join(f"`{x}`" for x in f.fixes)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
