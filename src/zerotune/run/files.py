"""The run directory: the self-contained unit that eval, finetune, export and serve read.

Every file name of a run directory is defined here and nowhere else; other modules reach the files
through `RunDir`. Layout::

    runs/<name>/
        config.yaml            resolved config
        meta.json              data metadata (shapes, classes, normalisation statistics)
        env.json               versions, device and seed of the run
        metrics.json           final metrics
        finetune.json          what a fine-tune started from and froze (fine-tunes only)
        params.json            fitted parameters (scratch runs only)
        events.out.tfevents.*  TensorBoard events
        hf/                    a transformer's config and tokenizer (weights stay in the checkpoints)
        tokenizer/             a language model's own tokenizer (its files: data/lm_tokenizer.py)
        adapters/              LoRA adapters saved alone (``finetune --save-adapters``)
        export/                exported models, by default (``zerotune export``)
        eval/answers-<split>.jsonl  every answer of an evaluation (``zerotune eval --answers``)
        report.{html,md}       ``zerotune report``
        run.lock               held while a job writes here (run/lock.py); gone when it ends
        scaling/<label>/       TensorBoard runs of a scratch run's conditioning study
        checkpoints/{best,last}/
            model.safetensors      weights
            optimizer.safetensors  optimizer state and RNG tensors (`last` only)
            state.json             step, epoch, optimizer hyper-parameters, RNG, callback state
            dcp/                   every rank's shard of weights and optimizer state (FSDP `last` only)
            checksums.json         size and CRC32C of each file above, written last (run/checksums.py)

A sweep directory (``zerotune sweep``, see `SweepDir`) holds one run directory per trial::

    runs/<sweep>/
        sweep.json             what the sweep searches: base config, parameters, objective, sampler
        study.db               the Optuna study (SQLite), shared by the sweep's worker processes
        sweep.lock             held while a sweep process runs in it
        best.toml              the best trial's recipe
        trial-000/ ...         one run directory per trial

The names inside a checkpoint are defined here too; how a checkpoint is written and read (safetensors,
the state.json schema, the atomic swap) belongs to train/checkpoint.py.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
from datetime import datetime
from pathlib import Path

from ..errors import UserError, require_file
from .atomic import atomic_write_text

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
ENV_FILE = "env.json"
METRICS_FILE = "metrics.json"
FINETUNE_FILE = "finetune.json"
PARAMS_FILE = "params.json"
REFERENCE_LOGPS_FILE = "reference_logps.safetensors"  # preference tuning: the reference model's log-probs
EVENTS_GLOB = "events.out.tfevents.*"
HF_DIR = "hf"
TOKENIZER_DIR = "tokenizer"
ADAPTERS_DIR = "adapters"
PROFILE_DIR = "profile"  # `zerotune profile`: its events, and the trace for Perfetto or chrome://tracing
PROFILE_TRACE = "trace.json.gz"
EXPORT_DIR = "export"
EVAL_DIR = "eval"  # `zerotune eval --answers`: the answers to each prompt of a split or prompts file
REPORT_STEM = "report"
SCALING_DIR = "scaling"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_NAMES = ("best", "last")
RUN_LOCK_FILE = "run.lock"  # held while a job writes in the run directory (run/lock.py)
CV_FILE = "cv.json"  # `zerotune cv`: beside the fold runs, in the folder that holds them
SWEEP_FILE = "sweep.json"
SWEEP_STUDY_FILE = "study.db"
SWEEP_LOCK_FILE = "sweep.lock"
SWEEP_BEST_RECIPE = "best.toml"
SWEEP_TRIAL_PREFIX = "trial-"

# inside a checkpoint directory
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
DCP_DIR = "dcp"  # FSDP: every rank's shard of the weights and optimizer state (torch.distributed.checkpoint)
CHECKSUMS_FILE = "checksums.json"  # the size and CRC32C of every other file of the checkpoint

# inside adapters/ (peft's names, which our own LoRA models reuse), beside head.safetensors and labels.json
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
HEAD_FILE = "head.safetensors"
LABELS_FILE = "labels.json"

# The file and folder names that no module outside run/ may spell (tests/core/test_architecture_rundir.py).
FILE_NAMES = (CONFIG_FILE, META_FILE, ENV_FILE, METRICS_FILE, FINETUNE_FILE, PARAMS_FILE, HF_DIR, TOKENIZER_DIR,
              ADAPTERS_DIR, EXPORT_DIR, SCALING_DIR, CHECKPOINTS_DIR, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE,
              ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, HEAD_FILE, LABELS_FILE, CV_FILE, SWEEP_FILE,
              SWEEP_STUDY_FILE, SWEEP_LOCK_FILE, SWEEP_BEST_RECIPE, DCP_DIR, RUN_LOCK_FILE, CHECKSUMS_FILE, EVAL_DIR)


class RunDir:
    """The paths of one run directory, e.g. ``RunDir("runs/x").metrics`` or ``.checkpoint("best")``.

    It only names files; reading and writing stay with `write_json`, `read_json` and `atomic_write_text`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def meta(self) -> Path:
        return self.path / META_FILE

    @property
    def env(self) -> Path:
        return self.path / ENV_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def finetune(self) -> Path:
        return self.path / FINETUNE_FILE

    @property
    def params(self) -> Path:
        return self.path / PARAMS_FILE

    @property
    def hf(self) -> Path:
        return self.path / HF_DIR

    @property
    def tokenizer(self) -> Path:
        return self.path / TOKENIZER_DIR

    @property
    def reference_logps(self) -> Path:
        return self.path / REFERENCE_LOGPS_FILE

    @property
    def adapters(self) -> Path:
        return self.path / ADAPTERS_DIR

    @property
    def profile(self) -> Path:
        return self.path / PROFILE_DIR

    @property
    def profile_trace(self) -> Path:
        return self.profile / PROFILE_TRACE

    @property
    def export(self) -> Path:
        return self.path / EXPORT_DIR

    def answers(self, name: str) -> Path:
        """Where ``zerotune eval --answers`` writes by default: ``eval/answers-<name>.jsonl``, name being the
        split or the prompts file's stem."""
        return self.path / EVAL_DIR / f"answers-{name}.jsonl"

    @property
    def scaling(self) -> Path:
        return self.path / SCALING_DIR

    @property
    def lr_find_plot(self) -> Path:
        """The learning-rate range test's smoothed loss curve (``zerotune lr-find``)."""
        return self.path / "lr_find.png"

    def report(self, fmt: str) -> Path:
        """The report file, ``report.html`` or ``report.md``."""
        return self.path / f"{REPORT_STEM}.{fmt}"

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    def checkpoint(self, name: str) -> Path:
        """The checkpoint directory ``checkpoints/<name>``, name being "best" or "last"."""
        return self.checkpoints / name

    @property
    def lock(self) -> Path:
        """The lock file of the job writing here (`run.lock.run_lock`); absent when none is."""
        return self.path / RUN_LOCK_FILE

    def event_files(self) -> list[Path]:
        return sorted(self.path.glob(EVENTS_GLOB))

    def is_run(self) -> bool:
        """Whether the directory holds a zerotune run: it has a config.yaml, readable or not (reading it says
        what is wrong with it, rather than that it is missing)."""
        return self.path.is_dir() and self.config.exists()


def cv_summary_file(cv_dir: str | os.PathLike) -> Path:
    """The mean ± std of a cross-validation (``zerotune cv``), in the folder of its fold runs."""
    return Path(cv_dir) / CV_FILE


def fold_run_name(fold: int) -> str:
    """The run directory name of one fold of a cross-validation: ``fold-0``, ``fold-1``, ..."""
    return f"fold-{fold}"


class SweepDir:
    """The paths of one sweep directory (``zerotune sweep``): its study, description, best recipe and trials."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def spec(self) -> Path:
        return self.path / SWEEP_FILE

    @property
    def study(self) -> Path:
        return self.path / SWEEP_STUDY_FILE

    @property
    def lock(self) -> Path:
        return self.path / SWEEP_LOCK_FILE

    @property
    def best_recipe(self) -> Path:
        return self.path / SWEEP_BEST_RECIPE

    @staticmethod
    def trial_name(number: int) -> str:
        """``trial-007``: the run directory name of trial `number`."""
        return f"{SWEEP_TRIAL_PREFIX}{number:03d}"

    def is_sweep(self) -> bool:
        return self.spec.is_file() and self.study.is_file()


def new_run_name(prefix: str) -> str:
    """A sortable run name such as ``digits-cnn-20261123-141502`` (see `create_unique_run_dir`)."""
    return f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _cannot_create(path: Path, e: OSError) -> UserError:
    # a read-only or full disk, or a file where a directory should be
    return UserError(f"cannot create run directory {path}: {e.strerror or e} (check --runs-dir / log.dir)")


def create_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create ``root/name``; refuse to reuse a directory so no earlier run is overwritten.

    Raises:
        UserError: when the directory already exists.
    """
    path = Path(root) / name
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        raise UserError(
            f"run directory {path} already exists; choose another --name or pass --resume {path}"
        ) from None
    except OSError as e:
        raise _cannot_create(path, e) from None
    return path


def create_unique_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create ``root/name``, or ``root/name-2``, ``name-3``... when taken: for default names, which two runs
    started in the same second share.

    Each try is one ``mkdir`` that fails if the directory exists, so two processes never get the same one.

    Raises:
        UserError: when the directory cannot be created for another reason than being taken.
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cannot_create(root / name, e) from None
    for n in itertools.count(1):
        path = root / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise _cannot_create(path, e) from None
        return path


def clear_run_outputs(run_dir: str | os.PathLike) -> None:
    """Remove what an attempt that never reached a checkpoint wrote while training: events, checkpoints, metrics.

    The files that describe the run (config.yaml, meta.json, ...) are written again by the new attempt.
    """
    run = RunDir(run_dir)
    for events in run.event_files():
        events.unlink()
    shutil.rmtree(run.checkpoints, ignore_errors=True)
    for first_save in run.path.glob(f".{CHECKPOINTS_DIR}.tmp-*"):  # a first save killed before its rename
        shutil.rmtree(first_save, ignore_errors=True)
    run.metrics.unlink(missing_ok=True)


def outermost_missing(path: str | os.PathLike) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet (what ``mkdir(parents=True)`` creates
    first), or None when `path` exists."""
    missing = None
    for p in (Path(path), *Path(path).parents):
        if os.path.lexists(p):
            break
        missing = p
    return missing


@contextlib.contextmanager
def removed_on_failure(*paths: str | os.PathLike | None):
    """If the block raises, remove those of `paths` that did not exist when it began.

    A command that fails then leaves no empty folder or partial file behind (see `outermost_missing` for
    the folders ``mkdir(parents=True)`` will make).
    """
    new = [Path(p) for p in paths if p is not None and not os.path.lexists(p)]
    try:
        yield
    except BaseException:
        for p in new:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                with contextlib.suppress(OSError):
                    p.unlink()
        raise


def _finite(obj):
    """``obj`` with NaN and infinite floats as None: Python writes them as NaN/Infinity, which is not JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomically write ``obj`` as indented, strict JSON (a NaN or infinite float is written as null)."""
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_text(path: str | os.PathLike) -> str:
    """A run file's text; a missing file, a directory in its place or bytes that are not UTF-8 are a UserError."""
    require_file(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); it was changed or damaged") from None
    except OSError as e:
        raise UserError(f"{path} cannot be read: {e.strerror or e}") from None


_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}


def json_type(value) -> str:
    """How JSON names the type of `value`: ``an object``, ``a list``, ``a number``, ..."""
    return _JSON_TYPES.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def read_json(path: str | os.PathLike, kind: type | None = dict):
    """Read a JSON file, turning a missing, corrupt or mistyped file into a UserError.

    Args:
        path: the file.
        kind: the type its top-level value must have (every file of a run holds an object); None: any.
    """
    text = read_text(path)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: not JSON, or a number too long to read
        raise UserError(f"{path} is not valid JSON ({str(e)[:200]})") from None
    if kind is not None and not isinstance(value, kind):
        raise UserError(f"{path} must hold {_JSON_TYPES.get(kind, kind.__name__)}, not {json_type(value)}")
    return value


def read_run_config_dict(run_dir: str | os.PathLike) -> dict:
    """A run's config.yaml as a plain dict, not yet validated (`config.build_config` does that).

    Raises:
        UserError: when the directory is not a run, or its config.yaml is unreadable, not YAML, empty
            or not a table of groups.
    """
    import yaml

    run = RunDir(run_dir)
    if not run.path.is_dir():
        what = "is not a directory" if run.path.exists() else "does not exist"
        raise UserError(f"run directory {run.path} {what}")
    if not run.config.exists():
        raise UserError(f"{run.path} is not a zerotune run: it has no {CONFIG_FILE}")
    text = read_text(run.config)
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as e:
        raise UserError(f"{run.config} is not valid YAML: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if raw is None:
        # Read as the defaults, it would rebuild another model than the run trained.
        raise UserError(f"{run.config} is empty; it must hold the run's whole config, as zerotune train wrote it")
    if not isinstance(raw, dict):
        raise UserError(f"{run.config} must hold a table of groups (data, model, ...), not {json_type(raw)}")
    return raw
