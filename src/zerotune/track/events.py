"""Reading runs back from their event files, with TensorBoard's own reader.

``tensorboard.backend.event_processing`` is what the board itself uses (in its Python loading
mode), so what `zerotune runs` and `zerotune report` show is what TensorBoard shows. Its record
reader stops cleanly at a record cut short by a killed writer, which keeps such runs readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import hparams as hp

EVENT_PATTERN = "*tfevents*"


def require_tensorboard() -> None:
    """Raise a UserError naming the install command when the tensorboard package is missing."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise UserError("this needs the tensorboard package, a dependency of zerotune: pip install tensorboard")


def find_runs(logdir: str | Path) -> list[Path]:
    """Every directory under ``logdir`` (itself included) that holds an event file, sorted.

    Raises:
        UserError: when ``logdir`` does not exist.
    """
    root = Path(logdir)
    if not root.exists():
        raise UserError(f"log directory {root} does not exist")
    if root.is_file():
        raise UserError(f"{root} is a file; give the directory that holds runs")
    return sorted({p.parent for p in root.rglob(EVENT_PATTERN) if p.is_file()})


@dataclass
class RunEvents:
    """What one run's event files hold, in plain Python values."""

    path: Path
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # tag -> [(step, value)]
    hparams: dict[str, Any] = field(default_factory=dict)
    finished: bool = False  # a session-end record was written (the run reached on_fit_end)
    first_wall: float | None = None
    last_wall: float | None = None
    images: dict[str, bytes] = field(default_factory=dict)  # tag -> latest PNG
    texts: dict[str, str] = field(default_factory=dict)  # tag -> latest text
    histograms: dict[str, tuple[int, Any]] = field(default_factory=dict)  # tag -> (step, (k, 3) [left, right, count])
    tags: dict[str, list[str]] = field(default_factory=dict)  # plugin name -> tags

    def last(self, tag: str) -> float | None:
        """The last value of a scalar tag, or None."""
        points = self.scalars.get(tag)
        return points[-1][1] if points else None

    @property
    def last_step(self) -> int:
        return max((pts[-1][0] for pts in self.scalars.values() if pts), default=0)


def event_files(run_dir: str | Path) -> list[Path]:
    """The event files directly in ``run_dir``, oldest first (their names start with a timestamp)."""
    return sorted(p for p in Path(run_dir).glob(EVENT_PATTERN) if p.is_file())


def load_events(path: Path):
    """The events of one file, as TensorBoard's ``EventFileLoader`` gives them, except plain scalars.

    The loader migrates every old-style value to its tensor form; for a scalar (``simple_value``,
    what tensorboardX writes) that is two thirds of the reading time, so events holding only
    scalars are passed on as they are, and the caller reads ``simple_value``.
    """
    from tensorboard import data_compat, dataclass_compat
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    initial_metadata: dict = {}  # what EventFileLoader keeps between events
    for event in LegacyEventFileLoader(str(path)).Load():
        if event.summary.value and all(v.HasField("simple_value") for v in event.summary.value):
            yield event
        else:
            yield from dataclass_compat.migrate_event(data_compat.migrate_event(event), initial_metadata)


def read_run_events(run_dir: str | Path, images: bool = False, texts: bool = False,
                    histograms: str | None = None) -> RunEvents:
    """Read one run directory's event files.

    Each file is read on its own with TensorBoard's loader (see `load_events`), in name order, which is the order they were opened. A restart
    marker (SessionLog START, left by a resumed run at the first step it logs again) hides points
    at or after its step read before it, as TensorBoard does.

    Args:
        run_dir: a directory holding event files (sub-directories are other runs).
        images: also keep the latest image of each image tag (PNG bytes).
        texts: also keep the latest text of each text tag.
        histograms: also keep the latest histogram of each tag that starts with this prefix
            (e.g. ``"activations/"``), as an array of [left edge, right edge, count] rows.
    """
    require_tensorboard()
    from tensorboard.compat.proto.event_pb2 import SessionLog
    from tensorboard.util import tensor_util

    out = RunEvents(Path(run_dir))
    scalars: dict[str, list[tuple[int, float]]] = {}
    latest_images: dict[str, tuple[int, bytes]] = {}
    latest_texts: dict[str, tuple[int, str]] = {}
    latest_histograms: dict[str, tuple[int, Any]] = {}
    hparams_content: dict[str, bytes] = {}
    plugin_of: dict[str, str] = {}
    walls: list[float] = []

    def purge(step: int) -> None:
        for tag, pts in scalars.items():
            scalars[tag] = [p for p in pts if p[0] < step]
        for store in (latest_images, latest_texts, latest_histograms):
            for tag in [t for t, (s, _) in store.items() if s >= step]:
                del store[tag]

    for path in event_files(run_dir):
        for event in load_events(path):
            if event.wall_time:
                walls.append(event.wall_time)
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                purge(event.step)
                continue
            if event.graph_def:
                out.tags["graphs"] = ["__run_graph__"]
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name:
                    plugin_of[v.tag] = v.metadata.plugin_data.plugin_name
                simple = v.HasField("simple_value")
                plugin = "scalars" if simple else plugin_of.get(v.tag, "")
                kind = out.tags.setdefault(plugin or "other", [])
                if v.tag not in kind:
                    kind.append(v.tag)
                if plugin == "scalars":
                    value = v.simple_value if simple else tensor_util.make_ndarray(v.tensor).item()
                    scalars.setdefault(v.tag, []).append((event.step, float(value)))
                elif plugin == "hparams":
                    hparams_content[v.tag] = v.metadata.plugin_data.content
                elif plugin == "images" and images:
                    blobs = tensor_util.make_ndarray(v.tensor)  # [width, height, png, ...]
                    if len(blobs) > 2:
                        latest_images[v.tag] = (event.step, bytes(blobs[-1]))
                elif plugin == "histograms" and histograms is not None and v.tag.startswith(histograms):
                    latest_histograms[v.tag] = (event.step, tensor_util.make_ndarray(v.tensor))
                elif plugin == "text" and texts and (text := _first_text(tensor_util.make_ndarray(v.tensor))):
                    latest_texts[v.tag.removesuffix("/text_summary")] = (event.step, text)
    for pts in scalars.values():
        pts.sort(key=lambda p: p[0])  # stable: points of one step keep their order
    out.scalars = scalars
    out.images = {t: b for t, (_, b) in latest_images.items()}
    out.texts = {t: x for t, (_, x) in latest_texts.items()}
    out.histograms = latest_histograms
    out.first_wall = min(walls) if walls else None
    out.last_wall = max(walls) if walls else None
    if hp.SESSION_START_TAG in hparams_content:
        integers = hp.integer_columns(hparams_content[hp.EXPERIMENT_TAG]) if hp.EXPERIMENT_TAG in hparams_content \
            else frozenset()
        out.hparams = hp.parse_session_start(hparams_content[hp.SESSION_START_TAG], integers)
    out.finished = hp.SESSION_END_TAG in hparams_content
    return out


def _first_text(values) -> str | None:
    """The first string of a text summary's tensor, or None when it holds none."""
    arr = values.reshape(-1)
    if not len(arr):
        return None
    raw = arr[0]
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
