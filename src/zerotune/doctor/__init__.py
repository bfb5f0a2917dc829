"""`zerotune doctor`: read a run's curves and say what is wrong and what to change.

`diagnose` reads a run directory once (`evidence.py`) and applies every rule, each a function
from the evidence to a list of findings (`optim_rules.py`, `fit_rules.py`, `sft_rules.py`,
`preference_rules.py`, `data_rules.py`, `file_rules.py`). `report.py` writes a run's page, the findings
among its sections.
"""

from __future__ import annotations

from pathlib import Path

from . import data_rules, file_rules, fit_rules, optim_rules, preference_rules, sft_rules
from .evidence import Evidence, read_evidence
from .findings import Finding, by_severity, format_markdown, format_text, one_line, to_json

RULES = (
    optim_rules.diverged, optim_rules.lr_too_high, optim_rules.lr_too_low, optim_rules.exploding_gradients,
    optim_rules.vanishing_gradients, fit_rules.overfitting, fit_rules.underfitting, fit_rules.plateau,
    fit_rules.early_stop_wasted, sft_rules.sft_not_learning, sft_rules.sft_overfit,
    preference_rules.dpo_reward_collapse, preference_rules.dpo_overoptimized, data_rules.input_bound,
    data_rules.class_imbalance, data_rules.dead_units, file_rules.damaged_checkpoint, file_rules.unchecked_checkpoint,
)


def apply_rules(evidence: Evidence) -> list[Finding]:
    """Every rule's findings on already-read evidence, most severe first.

    A diverged run's other statistics are noise, so only `diverged`, the rules that say why
    (the learning rate, the gradients) and a damaged checkpoint are kept when it fires.
    """
    found = [f for rule in RULES for f in rule(evidence)]
    if any(f.id == "diverged" for f in found):
        kept = ("diverged", "lr_too_high", "exploding_gradients", "damaged_checkpoint")
        found = [f for f in found if f.id in kept]
    return by_severity(found)


def diagnose(run_dir: str | Path) -> list[Finding]:
    """The findings about one run directory (finished or still training), most severe first.

    Raises:
        UserError: when ``run_dir`` is not a run directory or has no event files yet.
    """
    return apply_rules(read_evidence(run_dir))


__all__ = ["Finding", "RULES", "apply_rules", "diagnose", "format_markdown", "format_text", "one_line", "to_json"]
