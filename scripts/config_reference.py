"""Print the config reference (every group and field, its default and its one-line doc) as Markdown.

    python scripts/config_reference.py > /tmp/ref.md
"""

from pydantic import BaseModel

from zerotune.config import Config


def groups(model: type[BaseModel], prefix: str = ""):
    rows, nested = [], []
    for name, info in model.model_fields.items():
        ann = info.annotation
        sub = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is not None:
            nested.append((f"{prefix}{name}", sub))
            continue
        rows.append((name, info.get_default(call_default_factory=True), info.description or ""))
    if rows:
        yield prefix.rstrip("."), rows
    for name, sub in nested:
        yield from groups(sub, name + ".")


if __name__ == "__main__":
    for group, rows in groups(Config):
        print(f"\n### `{group}`\n\n| field | default | meaning |\n|---|---|---|")
        for name, default, doc in rows:
            print(f"| `{name}` | `{default}` | {doc} |")
