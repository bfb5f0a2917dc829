"""Pure pieces against references: hparams flattening, device statistics, images, figures, sink."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from zerotune.config import Config
from zerotune.track import figures, images, stats, summaries
from zerotune.track import hparams as hp
from zerotune.track.sink import EventSink

# -- hparams -------------------------------------------------------------------------------------

def test_flatten_nested_lists_none():
    flat = hp.flatten({"a": {"b": {"c": 1}, "l": [1, 2]}, "n": None, "e": {}})
    assert flat == {"a.b.c": 1, "a.l": [1, 2], "n": None, "e": None}


@pytest.mark.parametrize("value, expected", [
    (True, True), (3, 3.0), (1e-3, 1e-3), ("adam", "adam"), (None, None),
    ([32, 64], "[32, 64]"), ((0.9, 0.999), "[0.9, 0.999]"), ({"k": [1, None]}, '{"k": [1, null]}'),
    (float("nan"), "nan"), (float("inf"), "inf"), (np.float32(0.5), 0.5), (np.int64(7), 7.0),
    ({3, 1}, "[1, 3]"), ([[1, 2], {"x": None}], '[[1, 2], {"x": null}]'), (object, str(object)),
])
def test_to_hparam_never_crashes(value, expected):
    assert hp.to_hparam(value) == expected


def test_long_values_are_cut():
    assert len(hp.to_hparam(list(range(1000)))) == hp.MAX_STRING


def test_resolve_default_config_and_roundtrip():
    kinds, values = hp.resolve(Config().to_dict())
    assert kinds["optim.lr"] == "number" and kinds["optim.nesterov"] == "bool" and kinds["optim.name"] == "string"
    assert kinds["optim.clip_norm"] == "number" and "optim.clip_norm" not in values  # None: no value
    assert "train.early_stopping.patience" in kinds and "train.early_stopping" not in kinds
    assert "model.hidden" in kinds and "model.channels" in kinds  # every model's options are columns
    assert not any(k.startswith("log.") for k in kinds)
    assert set(values) <= set(kinds)
    summary = hp.session_start_summary(values, "run")
    assert hp.parse_session_start(summary.value[0].metadata.plugin_data.content) == values


def test_resolve_set_optional_group():
    cfg = Config().to_dict()
    cfg["train"]["early_stopping"] = {"patience": 3, "min_delta": 0.0}
    _, values = hp.resolve(cfg)
    assert values["train.early_stopping.patience"] == 3.0


# -- statistics on the device --------------------------------------------------------------------

def test_hist_stats_matches_numpy():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    s = stats.hist_stats(x, bins=16).numpy().astype(np.float64)
    lo, hi, n, total, squares = s[:5]
    assert (lo, hi, n) == (pytest.approx(x.min().item()), pytest.approx(x.max().item()), 1000)
    assert total == pytest.approx(x.sum().item(), abs=1e-3) and squares == pytest.approx((x * x).sum().item(), rel=1e-5)
    ref, _ = np.histogram(x.numpy(), bins=16, range=(lo, hi))
    assert np.abs(s[5:] - ref).sum() <= 2  # float rounding may move a value at a bucket edge
    assert s[5:].sum() == 1000


def test_histogram_summary_and_nonfinite():
    s = summaries.histogram("w", stats.hist_stats(torch.arange(10.0), bins=5).numpy())
    h = s.value[0].histo
    assert list(h.bucket) == [2, 2, 2, 2, 2] and h.bucket_limit[-1] == pytest.approx(9.0)
    assert summaries.histogram("w", stats.hist_stats(torch.tensor([float("nan")])).numpy()) is None


def test_layer_stats_against_manual():
    w = [torch.tensor([3.0, 4.0]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])]
    prev = [torch.tensor([3.0, 3.0]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])]
    grads = [torch.tensor([0.0, 2.0]), None]
    out = stats.layer_stats(w, grads, prev)
    assert out.shape == (3, 3)
    assert out[0].tolist() == pytest.approx([2.0, 0.0, 2.0])  # grad norms; None counts as 0
    assert out[1].tolist() == pytest.approx([5.0, 1.0, math.sqrt(26)])
    assert out[2].tolist() == pytest.approx([1 / 5, 0.0, 1 / math.sqrt(26)])  # ‖Δw‖ / ‖w after‖
    assert stats.layer_stats(w, grads, None).shape == (2, 3)  # no snapshot: no ratio row


# -- images and figures --------------------------------------------------------------------------

def test_to_display_undoes_normalisation():
    raw = torch.rand(2, 1, 4, 4)
    shown = images.to_display((raw - 0.3) / 0.2, mean=[0.3], std=[0.2])
    assert shown.shape == (2, 4, 4, 3)
    assert np.allclose(shown[..., 0], raw[:, 0].numpy(), atol=1e-6) and np.allclose(shown[..., 0], shown[..., 2])


def test_caption_grid_and_worst():
    pics = np.random.default_rng(0).random((5, 8, 8, 3))
    grid = images.caption_grid(pics, [f"true {i}\npred 0" for i in range(5)], cols=3)
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    assert grid.shape[1] == 3 * (8 * 12 + 4) + 4  # 8 px scaled by 12 to 96, three per row
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert images.worst_indices(probs, np.array([0, 0, 1]), 2).tolist() == [1, 2]


def test_figures_render():
    cm = np.array([[5, 1], [2, 7]])
    rgb = figures.to_rgb(figures.confusion_matrix_figure(cm, ["cat", "dog"]))
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert figures.to_png(figures.scatter_figure(np.arange(10.0), np.arange(10.0) + 1)).startswith(b"\x89PNG")


def test_roc_macro_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    probs = rng.dirichlet(np.ones(3), 200)
    probs[np.arange(200), y] += 0.3
    probs /= probs.sum(1, keepdims=True)
    _, macro = figures.roc_figure(y, probs, ["a", "b", "c"])
    assert macro == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))


def test_clean_tag():
    assert summaries.clean_tag("a b/ç:d") == "a_b/__d"


# -- the writer thread ---------------------------------------------------------------------------

def _scalars(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def test_sink_batches_steps_and_reads_tensors(tmp_path):
    pytest.importorskip("tensorboard")
    sink = EventSink(tmp_path)
    for step in range(1, 4):
        sink.scalars(step, (("a", torch.tensor(step * 1.0)), ("b", 2.0), (("c/0", "c/1"), torch.tensor([1.0, step]))))
    sink.close()
    acc = _scalars(tmp_path)
    assert [p.value for p in acc.Scalars("a")] == [1.0, 2.0, 3.0]
    assert [p.value for p in acc.Scalars("c/1")] == [1.0, 2.0, 3.0]
    from tensorboard.backend.event_processing.event_file_loader import (
        LegacyEventFileLoader,
    )

    events = [e for e in LegacyEventFileLoader(sink.path).Load() if e.summary.value]
    assert len(events) >= 3 and len(events[0].summary.value) == 4  # one event per step, not per tag


def test_sink_purge_on_resume(tmp_path):
    pytest.importorskip("tensorboard")
    first = EventSink(tmp_path)
    for s in range(1, 11):
        first.scalars(s, (("loss", float(s)),))
    first.close()
    time.sleep(0.01)
    resumed = EventSink(tmp_path, purge_step=6)  # a run killed at step 10, resumed from 5
    for s in range(6, 9):
        resumed.scalars(s, (("loss", 100.0 + s),))
    resumed.close()
    assert [(p.step, p.value) for p in _scalars(tmp_path).Scalars("loss")] == \
        [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 106), (7, 107), (8, 108)]


def test_resumed_sink_file_sorts_after_a_killed_one_of_the_same_second(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboardX import event_file_writer

    from zerotune.track import sink as sink_module

    # File names hold the second they were opened in; the killed process's pid sorts after the
    # resumed one's (99999 > 100000 as text), which must not put the resumed file first.
    monkeypatch.setattr(event_file_writer.time, "time", lambda: 1_700_000_000.5)
    monkeypatch.setattr(sink_module.os, "getpid", lambda: 99999)
    killed = EventSink(tmp_path)
    for s in range(1, 11):
        killed.scalars(s, (("loss", float(s)),))
    killed.close()
    monkeypatch.setattr(sink_module.os, "getpid", lambda: 100000)
    resumed = EventSink(tmp_path, purge_step=6)
    for s in range(6, 9):
        resumed.scalars(s, (("loss", 100.0 + s),))
    resumed.close()
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == Path(resumed.path).name
    assert [(p.step, p.value) for p in _scalars(tmp_path).Scalars("loss")] == \
        [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 106), (7, 107), (8, 108)]


def _summaries_by_tag(logdir: Path) -> dict:
    """{(tag, step): (kind, content)} of every summary in a directory's event files."""
    import io

    from PIL import Image
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    found = {}
    for path in sorted(logdir.glob("*tfevents*")):
        for event in LegacyEventFileLoader(str(path)).Load():
            for v in event.summary.value:
                kind = v.WhichOneof("value")
                if kind == "image":  # same pixels; the PNG encoder's settings may differ
                    content = np.asarray(Image.open(io.BytesIO(v.image.encoded_image_string))).tolist()
                else:
                    content = getattr(v, kind)
                found[v.tag, event.step] = (kind, content)
    return found


def test_sink_writes_what_a_summary_writer_writes(tmp_path):
    """Scalars, histograms and images through the sink read back as SummaryWriter's do."""
    pytest.importorskip("tensorboard")
    from tensorboardX import SummaryWriter

    rng = np.random.default_rng(0)
    values = rng.normal(size=(20, 3))
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    with SummaryWriter(logdir=str(tmp_path / "writer")) as writer:
        writer.add_scalar("w/mean radius", 0.5, 3)  # a feature name with a space
        writer.add_histogram("weights/W1", values, 4)
        writer.add_image("figure", image, 5, dataformats="HWC")
        writer.add_text("notes", "| a |\n|---|\n| 1 |", 0)
    with EventSink(tmp_path / "sink", record_memory=False) as sink:
        sink.add_scalar("w/mean radius", 0.5, 3)
        sink.add_histogram("weights/W1", values, 4)
        sink.add_image("figure", image, 5)
        sink.add_text("notes", "| a |\n|---|\n| 1 |", 0)
    expected = _summaries_by_tag(tmp_path / "writer")
    assert set(expected) == {("w/mean_radius", 3), ("weights/W1", 4), ("figure", 5), ("notes/text_summary", 0)}
    assert _summaries_by_tag(tmp_path / "sink") == expected


def test_sink_records_memory_unless_told_not_to(tmp_path):
    pytest.importorskip("tensorboard")
    for record in (True, False):
        with EventSink(tmp_path / str(record), record_memory=record) as sink:
            sink.add_scalar("loss", 1.0, 1)
        tags = set(_scalars(tmp_path / str(record)).Tags()["scalars"])
        assert ("perf/rss_memory_mb" in tags) is record and "loss" in tags


def test_a_closed_sink_leaves_no_file_open(tmp_path):
    """A process that trains many runs (a sweep, cv, a server's tests) must not carry one open file per run
    until the collector finds it: Python then warns, on whatever stderr that later moment has."""
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with EventSink(tmp_path, record_memory=True) as sink:
            sink.add_scalar("loss", 1.0, 1)
        del sink
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


def test_sink_survives_failing_job(tmp_path, capsys):
    sink = EventSink(tmp_path)

    def broken():
        raise ValueError("boom")

    sink.submit(broken)
    sink.scalars(1, (("x", 1.0),))
    sink.flush()
    sink.close()
    assert sink.errors and "boom" in sink.errors[0]
    assert "boom" in capsys.readouterr().err


def test_eval_mode_restores_each_module():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2), torch.nn.Dropout(0.5))
    model.train()
    model[1].eval()  # a frozen batch-norm inside a training model, as a fine-tune leaves it
    with stats.eval_mode(model):
        assert not any(m.training for m in model.modules())
        assert not torch.is_grad_enabled()
    assert [m.training for m in model.modules()] == [True, True, False, True]
