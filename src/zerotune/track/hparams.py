"""The HPARAMS tab: the resolved config, flattened, next to the run's final metrics.

Everything is written into the run's own directory (no sub-run), so the plugin finds the metric
values in the same run as the hyperparameters. Values TensorBoard cannot hold are converted
rather than dropped or allowed to crash: lists and tuples become compact JSON strings, nested
groups are flattened with dots, non-finite numbers become strings, and None leaves the cell
empty. TensorBoard holds every number as a float64, so an integer column is marked with the
description "integer" and read back as ``int`` (``block_size`` 128, not 128.0). Every run declares
the same columns (the whole config schema plus every registered model's options), because
TensorBoard takes the column list from one run, whichever it reads first. Data options the run's
data set ignores get no value (an empty cell), so a language model's run shows no image options.
"""

from __future__ import annotations

import json
import math
import time
from typing import Annotated, Any, Literal, get_args, get_origin

EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"
SKIPPED_GROUPS = ("log.",)  # where a run is written is not a hyperparameter
MAX_STRING = 200
INTEGER = "integer"  # the description of an integer column: TensorBoard itself has no integer type


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-3}}`` -> ``{"optim.lr": 1e-3}``; an empty group becomes None."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = None if isinstance(v, dict) else v
    return out


def kind_of(value) -> str | None:
    """The hparams data type a value is stored as: bool, int, number, string, or None (no value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else "string"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return kind_of(value.item())
    return "string"


def to_hparam(value):
    """Convert a config value to a bool, int, float or str; None stays None."""
    kind = kind_of(value)
    if kind is None:
        return None
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "number":
        return float(value)
    if isinstance(value, (list, tuple, set, dict)):
        text = json.dumps(sorted(value) if isinstance(value, set) else value, default=str, separators=(", ", ": "))
    else:
        text = str(value)
    return text if len(text) <= MAX_STRING else text[: MAX_STRING - 1] + "…"


def _kind_of_annotation(ann) -> str:
    ann = _bare(ann)
    args = [_bare(a) for a in (get_args(ann) or (ann,)) if a is not type(None)]
    first = args[0] if args else str
    if get_origin(first) is Literal:
        return "string"
    if first is bool:
        return "bool"
    if all(a is int for a in args):
        return "int"
    if first in (int, float):
        return "number"
    return "string"


def _bare(ann):
    """The type inside ``Annotated[type, validators]`` (config's strict Int and Float), else `ann`."""
    return get_args(ann)[0] if get_origin(ann) is Annotated else ann


def schema_kinds() -> dict[str, str]:
    """Data type of every config field (from the schema), and of every registered model option."""
    from pydantic import BaseModel

    from ..config import Config
    from ..models.registry import list_models, model_defaults

    out: dict[str, str] = {}

    def walk(cls, prefix: str) -> None:
        for name, field in cls.model_fields.items():
            ann = field.annotation
            subs = [a for a in (get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
            if subs:  # a group, possibly optional (early_stopping): only its fields are columns
                walk(subs[0], prefix + name + ".")
            else:
                out[prefix + name] = _kind_of_annotation(ann)

    walk(Config, "")
    for entry in list_models():
        for k, v in flatten(model_defaults(entry.name), "model.").items():
            out.setdefault(k, kind_of(v) or "string")
    return out


def resolve(config_dict: dict) -> tuple[dict[str, str], dict[str, Any]]:
    """Column types and this run's values, log.* and the data options its data set ignores left out.

    Returns:
        (kinds: name -> bool/int/number/string for every column, values: name -> value, None omitted)
    """
    from ..config import data_option_applies

    data_name = str(config_dict.get("data", {}).get("name"))
    flat = {k: v for k, v in flatten(config_dict).items() if not k.startswith(SKIPPED_GROUPS)
            and not (k.startswith("data.") and not data_option_applies(k.removeprefix("data."), data_name))}
    schema = schema_kinds()
    kinds = {k: v for k, v in schema.items() if not k.startswith(SKIPPED_GROUPS)}
    values = {}
    for k, v in flat.items():
        if any(s.startswith(k + ".") for s in schema):
            continue  # an unset optional group: its fields' cells stay empty
        hv = to_hparam(v)
        if hv is None:
            kinds.setdefault(k, "string")
            continue
        values[k] = hv
        kinds[k] = kind_of(hv)  # the value decides (e.g. a list-valued option is a string)
    return kinds, values


def _summary(tag: str, plugin_data):
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="hparams", content=plugin_data.SerializeToString()))
    return Summary(value=[Summary.Value(tag=tag, metadata=smd)])


def experiment_summary(kinds: dict[str, str], metrics: dict[str, str]):
    """The column list: hyperparameters with their types, metric tags with display names."""
    from tensorboardX.proto.api_pb2 import (
        DataType,
        Experiment,
        HParamInfo,
        MetricInfo,
        MetricName,
    )
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    types = {"bool": DataType.DATA_TYPE_BOOL, "int": DataType.DATA_TYPE_FLOAT64, "number": DataType.DATA_TYPE_FLOAT64,
             "string": DataType.DATA_TYPE_STRING}
    infos = [HParamInfo(name=k, type=types[kinds[k]], description=INTEGER if kinds[k] == "int" else "")
             for k in sorted(kinds)]
    mets = [MetricInfo(name=MetricName(tag=tag), display_name=name) for tag, name in metrics.items()]
    exp = Experiment(hparam_infos=infos, metric_infos=mets, time_created_secs=time.time())
    return _summary(EXPERIMENT_TAG, HParamsPluginData(experiment=exp, version=0))


def session_start_summary(values: dict[str, Any], group: str):
    """This run's hyperparameter values."""
    from tensorboardX.proto.plugin_hparams_pb2 import (
        HParamsPluginData,
        SessionStartInfo,
    )

    ssi = SessionStartInfo(group_name=group, start_time_secs=time.time())
    for k, v in values.items():
        if isinstance(v, bool):
            ssi.hparams[k].bool_value = v
        elif isinstance(v, (int, float)):
            ssi.hparams[k].number_value = v
        else:
            ssi.hparams[k].string_value = str(v)
    return _summary(SESSION_START_TAG, HParamsPluginData(session_start_info=ssi, version=0))


def session_end_summary(success: bool = True):
    """Marks the run finished (a run killed before this shows as still running)."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo

    status = Status.STATUS_SUCCESS if success else Status.STATUS_FAILURE
    sei = SessionEndInfo(status=status, end_time_secs=time.time())
    return _summary(SESSION_END_TAG, HParamsPluginData(session_end_info=sei, version=0))


def metric_columns(task_kind: str, monitor: str) -> dict[str, str]:
    """Metric tags shown in the HPARAMS tab (the plugin reads each tag's last value)."""
    common = {f"best/{monitor}": f"best {monitor}", "val/loss": "val loss", "train/loss": "train loss"}
    if task_kind == "classification":
        extra = {"val/accuracy": "val accuracy", "train/accuracy": "train accuracy", "val/roc_auc": "val ROC AUC"}
    elif task_kind == "preference":
        extra = {"val/rewards/accuracy": "val reward accuracy", "val/rewards/margin": "val reward margin",
                 "train/rewards/accuracy": "train reward accuracy"}
    else:
        extra = {"val/r2": "val R²", "val/mse": "val MSE", "train/r2": "train R²"}
    return {**common, **extra, "run/seconds": "training seconds"}


def parse_session_start(content: bytes, integers: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Hyperparameter values from the plugin content of a session-start summary.

    Args:
        content: the summary's plugin content.
        integers: the integer columns (see `integer_columns`), whose whole numbers come back as ``int``.
    """
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # not tensorboardX's: it imports torch

    data = HParamsPluginData.FromString(content)
    out = {}
    for k, v in data.session_start_info.hparams.items():
        which = v.WhichOneof("kind")
        value = getattr(v, which) if which else None
        if k in integers and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[k] = value
    return out


def integer_columns(content: bytes) -> frozenset[str]:
    """The columns an experiment summary (its plugin content) marks as integers."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # not tensorboardX's: it imports torch

    infos = HParamsPluginData.FromString(content).experiment.hparam_infos
    return frozenset(h.name for h in infos if h.description == INTEGER)
