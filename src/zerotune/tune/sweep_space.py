"""The search space of ``zerotune sweep``: each ``--param KEY=SPEC`` parsed, checked against the config
schema, and sampled from an Optuna trial.

SPEC is one of ``loguniform:LOW:HIGH``, ``uniform:LOW:HIGH``, ``int:LOW:HIGH`` (``int:LOW:HIGH:log`` for a
log scale) and ``choice:A,B,C``; KEY is a dotted config key, as for ``--set``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UserError

KINDS = ("loguniform", "uniform", "int", "choice")
# Set for each trial by the sweep itself: a trial's run directory is <sweep>/trial-NNN.
RESERVED = ("log.dir", "log.name")
MAX_GRID = 10000


@dataclass(frozen=True)
class Param:
    """One searched config key: a range (uniform, loguniform, int) or a list of choices."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        """This parameter's value in an Optuna `trial` (sampled, or fixed by an enqueued trial)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def extremes(self) -> list:
        """The values the config schema must accept for the whole range to be valid."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def grid(self) -> list:
        """Every value, for the grid sampler; a continuous range has none."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int" and self.high - self.low < MAX_GRID:
            return list(range(self.low, self.high + 1))
        raise UserError(f"--param {self.key}: the grid sampler needs choice: or int: values, not {self.spec}; "
                        f"list the values to try, e.g. {self.key}=choice:1e-3,1e-2")

    @property
    def spec(self) -> str:
        """The SPEC text back, e.g. ``loguniform:0.0001:0.1``."""
        if self.kind == "choice":
            return "choice:" + ",".join(map(str, self.choices))
        return f"{self.kind}:{self.low:g}:{self.high:g}" + (":log" if self.kind == "int" and self.log else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "choices": list(self.choices)}

    @classmethod
    def from_dict(cls, d: dict) -> Param:
        return cls(**{**d, "choices": tuple(d.get("choices", ()))})


def parse_param(text: str) -> Param:
    """``optim.lr=loguniform:1e-4:1e-1`` -> Param; a UserError of one line for anything malformed."""
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not spec:
        raise UserError(f"--param {text!r} must look like KEY=SPEC, e.g. optim.lr=loguniform:1e-4:1e-1")
    keys = key.split(".")
    if len(keys) < 2 or not all(keys):
        raise UserError(f"--param {text!r}: KEY must name a group and a field, e.g. optim.lr")
    if key in RESERVED:
        raise UserError(f"--param {key}: the sweep sets it for each trial (use --runs-dir and --name)")
    kind, _, rest = spec.partition(":")
    if kind not in KINDS:
        raise UserError(f"--param {key}: unknown kind {kind!r}; allowed: {', '.join(KINDS)} "
                        f"(e.g. loguniform:1e-4:1e-1, uniform:0:0.5, int:16:128, choice:adam,sgd)")
    if kind == "choice":
        return _choice(key, rest)
    return _range(key, kind, rest.split(":"))


def _choice(key: str, rest: str) -> Param:
    values = [v.strip() for v in rest.split(",")]
    if not rest or not all(values):
        raise UserError(f"--param {key}: choice needs values separated by commas, e.g. choice:adam,sgd")
    choices = tuple(_scalar(key, v) for v in values)
    if len(set(map(repr, choices))) < len(choices):
        raise UserError(f"--param {key}: choice lists a value twice: {rest}")
    return Param(key, "choice", choices=choices)


def _scalar(key: str, text: str):
    """A choice value as ``--set`` reads it (YAML), numbers such as ``1e-4`` included (YAML 1.1 reads a string)."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if not (value is None or isinstance(value, (bool, int, float, str))):
        raise UserError(f"--param {key}: choice value {text!r} must be a number, a word, true, false or null")
    return value


def _range(key: str, kind: str, parts: list[str]) -> Param:
    log = kind == "loguniform"
    if kind == "int" and len(parts) == 3 and parts[2] == "log":
        parts, log = parts[:2], True
    if len(parts) != 2:
        extra = " (int:LOW:HIGH:log for a log scale)" if kind == "int" else ""
        raise UserError(f"--param {key}: {kind} needs two bounds, {kind}:LOW:HIGH{extra}")
    low, high = (_bound(key, kind, p) for p in parts)
    if low > high:
        raise UserError(f"--param {key}: low {low:g} is above high {high:g}")
    if log and low <= 0:
        raise UserError(f"--param {key}: a log scale needs a low bound above 0, got {low:g}")
    return Param(key, kind, low, high, log)


def _bound(key: str, kind: str, text: str) -> float | int:
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        what = "an integer" if kind == "int" else "a number"
        raise UserError(f"--param {key}: bound {text!r} is not {what}") from None
    if not math.isfinite(value):
        raise UserError(f"--param {key}: bound {text!r} must be finite")
    return value


def with_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config dict with each dotted key set to its value (typed, unlike ``--set`` text)."""
    out = copy.deepcopy(raw)
    for key, value in values.items():
        *groups, field = key.split(".")
        node = out
        for g in groups:
            child = node.get(g)
            if child is None:
                child = node[g] = {}
            elif not isinstance(child, dict):
                raise UserError(f"--param {key}: {g} is a value, not a group")
            node = child
        node[field] = value
    return out


def check_params(params: list[Param], raw: dict[str, Any]) -> None:
    """Refuse a key the schema does not know, a key given twice, or a value in range that it refuses.

    Args:
        params: the parsed ``--param`` options.
        raw: the config dict every trial starts from (recipe and ``--set`` applied).
    """
    from ..config import build_config

    keys = [p.key for p in params]
    if not params:
        raise UserError("give at least one --param KEY=SPEC, e.g. --param optim.lr=loguniform:1e-4:1e-1")
    if len(set(keys)) < len(keys):
        raise UserError(f"--param {next(k for k in keys if keys.count(k) > 1)} is given twice")
    for p in params:
        for value in p.extremes():
            try:
                build_config(with_values(raw, {p.key: value}))
            except UserError as e:
                why = str(e).removeprefix("config: ")
                refused = "" if "unknown" in why else f"the value {value!r} is refused: "
                raise UserError(f"--param {p.key}={p.spec}: {refused}{why}") from None
