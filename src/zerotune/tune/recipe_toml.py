"""A config dict written as a TOML recipe that ``zerotune train`` reads back to the same Config.

The standard library reads TOML but does not write it; a recipe needs only tables of scalars and lists,
so this small writer covers it. A None value is left out: every field that may be None defaults to None.
"""

from __future__ import annotations

import json
import math
from typing import Any


def recipe_toml(config: dict[str, Any], header: str = "") -> str:
    """`config` (groups of fields, as ``Config.to_dict()`` gives) as TOML text, `header` as leading comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for group, fields in config.items():
        if isinstance(fields, dict):
            _table(lines, group, fields)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(lines: list[str], name: str, fields: dict[str, Any]) -> None:
    scalars = {k: v for k, v in fields.items() if v is not None and not isinstance(v, dict)}
    tables = {k: v for k, v in fields.items() if isinstance(v, dict)}
    lines += ["", f"[{name}]", *(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())]
    for key, sub in tables.items():
        _table(lines, f"{name}.{_key(key)}", sub)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(v, (list, tuple)):
        if any(x is None for x in v):
            raise ValueError(f"TOML has no null: cannot write {v!r}")
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {type(v).__name__} {v!r} as TOML")
