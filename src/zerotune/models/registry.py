"""Model registry: the CLI, the config and the Python API name models the same way.

Each model family registers a builder together with the pydantic dataclass that holds its options::

    @register_model("mlp", MLPConfig, "multi-layer perceptron")
    def build_mlp(cfg: MLPConfig, input_shape, num_outputs) -> nn.Module: ...

The families register themselves when the package ``zerotune.models`` is imported, which any
import of this module does first; the registry itself knows none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Callable, get_args

from pydantic import Field, TypeAdapter, ValidationError
from torch import nn

from ..errors import UserError, format_validation_error


# A layer's width or a count of layers in a model's options: a whole number (not true), at least 1, and
# below 2**31 so that torch can take it as a size (a larger one fails inside torch with a C++ trace).
Size = Annotated[int, Field(ge=1, lt=2**31, strict=True)]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    options: type
    build: Callable[..., nn.Module]
    summary: str
    input_kind: str  # "any", "image" or "table"


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, options: type, summary: str, input_kind: str = "any"):
    """Decorator that adds a builder ``fn(options, input_shape, num_outputs)`` to the registry."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, options, fn, summary, input_kind)
        return fn

    return wrap


def list_models() -> list[ModelEntry]:
    """Every registered model, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def parse_model_options(name: str, options: dict[str, Any]):
    """Validate a model's options against its schema and return the options object."""
    entry = get_model_entry(name)
    _refuse_bools(name, entry, options)
    try:
        return TypeAdapter(entry.options).validate_python(options)
    except ValidationError as e:
        fields = ", ".join(entry.options.__dataclass_fields__)
        # pydantic dataclasses report unknown options as unexpected keyword arguments
        e = ValidationError.from_exception_data(e.title, [
            {**d, "type": "extra_forbidden"} if d["type"] == "unexpected_keyword_argument" else d for d in e.errors()
        ]) if any(d["type"] == "unexpected_keyword_argument" for d in e.errors()) else e
        raise UserError(
            f"model {name!r}: {format_validation_error(e, prefix='model.')} (options: {fields})"
        ) from None


def _refuse_bools(name: str, entry: ModelEntry, options: dict[str, Any]) -> None:
    """TOML and YAML read `true` as a bool, which pydantic would take for the number 1: refused where an
    option is not a bool itself."""
    fields = getattr(entry.options, "__pydantic_fields__", {})
    for key, value in options.items():
        annotation = fields[key].annotation if key in fields else bool
        if isinstance(value, bool) and annotation is not bool and bool not in get_args(annotation):
            raise UserError(f"model {name!r}: model.{key}: must be a number, not a boolean (got {value})")


def validate_model_options(name: str, options: dict[str, Any]) -> None:
    parse_model_options(name, options)


def model_defaults(name: str) -> dict[str, Any]:
    """The default option values of a model, for `zerotune models`."""
    return asdict(get_model_entry(name).options())


def create_model(
    name: str, *, input_shape: tuple[int, ...], num_outputs: int, init: str = "default", **options
) -> nn.Module:
    """Build a registered model for data of the given shape.

    Args:
        name: registry name, e.g. "cnn".
        input_shape: shape of one example, e.g. (1, 8, 8) for images or (30,) for tables.
        num_outputs: classes for classification, 1 for regression.
        init: weight initialisation: default, normal, xavier or he.
        **options: the model's own options (see ``zerotune models``).

    Returns:
        The model, in float32 on the CPU.
    """
    from .init import init_weights

    entry = get_model_entry(name)
    cfg = parse_model_options(name, options)
    if entry.input_kind == "image" and len(input_shape) != 3:
        raise UserError(
            f"model {name!r} needs image input (channels, height, width); "
            f"the data has examples of shape {tuple(input_shape)}"
        )
    try:
        model = entry.build(cfg, tuple(input_shape), int(num_outputs))
        init_weights(model, init)
    except (RuntimeError, OverflowError, MemoryError) as e:  # sizes torch cannot allocate, or not even count
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"model {name!r} cannot be built with these options (check its sizes): {first}") from None
    return model
