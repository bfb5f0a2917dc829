"""Print the config reference (every group and field, its default, the values it takes and its one-line doc)
as Markdown; docs/training.md holds it, and tests/docs/test_guides.py checks that the two agree.

    python scripts/config_reference.py > /tmp/ref.md
"""

import types
import typing

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from zerotune.config import Config

BOUNDS = [(annotated_types.Ge, "ge", "≥"), (annotated_types.Gt, "gt", ">"),
          (annotated_types.Le, "le", "≤"), (annotated_types.Lt, "lt", "<")]
KINDS = {int: "integer", float: "number", str: "text", bool: "`true`, `false`"}
PLURAL = {"integer": "integers", "number": "numbers", "text": "texts"}


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _numeric(kind: str, metadata: list) -> str:
    """`integer ≥ 0, ≤ 100` from the annotated-types bounds of a field."""
    limits = [f"{sign} {_number(getattr(m, attr))}" for cls, attr, sign in BOUNDS for m in metadata if isinstance(m, cls)]
    return f"{kind} {', '.join(limits)}" if limits else kind


def allowed(annotation, metadata: list = ()) -> str:
    """The values an annotation (with the constraints pydantic keeps beside it) accepts, in words."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
        return allowed(args[0], [*metadata, *inner])
    if origin in (typing.Union, types.UnionType):
        parts = [allowed(a, metadata) for a in args if a is not type(None)]
        return ", ".join(parts) + (", or none" if type(None) in args else "")
    if origin is typing.Literal:
        return ", ".join(f"`{a}`" for a in args)
    if origin in (list, tuple, dict):
        return _container(origin, args, metadata)
    pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
    if pattern:
        return f"text matching `{pattern}`".replace("|", "\\|")
    kind = KINDS.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return _numeric(kind, metadata) if annotation in (int, float) else kind


def _plural(words: str) -> str:
    first, _, rest = words.partition(" ")
    return " ".join([PLURAL.get(first, first), rest]).strip()


def _container(origin, args, metadata: list) -> str:
    if origin is dict:
        return f"map of {_plural(allowed(args[0]))} to {_plural(allowed(args[1]))}"
    if origin is tuple and Ellipsis not in args:
        return f"{len(args)} {_plural(allowed(args[0], metadata))}"
    return f"list of {_plural(allowed(args[0], metadata))}"


def groups(model: type[BaseModel], prefix: str = ""):
    rows, nested = [], []
    for name, info in model.model_fields.items():
        ann = info.annotation
        sub = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is not None:
            nested.append((f"{prefix}{name}", sub))
            continue
        rows.append((name, info.get_default(call_default_factory=True), allowed(ann, info.metadata),
                     info.description or ""))
    if rows:
        yield prefix.rstrip("."), rows
    for name, sub in nested:
        yield from groups(sub, name + ".")


def reference() -> str:
    out = []
    for group, rows in groups(Config):
        out.append(f"\n### `{group}`\n\n| field | default | allowed | meaning |\n|---|---|---|---|")
        out += [f"| `{name}` | `{default}` | {values} | {doc} |" for name, default, values, doc in rows]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
