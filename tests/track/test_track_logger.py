"""What a real training run writes, read back with TensorBoard's EventAccumulator."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from zerotune.track import hparams as hp

PARAMS = ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
          "features.6.weight", "features.6.bias", "head.weight", "head.bias"]


def _steps(run) -> int:
    return json.loads((run / "metrics.json").read_text())["training"]["steps"]


def test_train_scalars_every_step(cls_events, cls_run):
    tags = set(cls_events.Tags()["scalars"])
    steps = _steps(cls_run)
    for tag in ("train/loss", "train/lr", "train/grad_norm", "perf/samples_per_sec", "perf/step_time_ms",
                "perf/data_wait_share"):
        points = cls_events.Scalars(tag)
        assert [p.step for p in points] == list(range(1, steps + 1)), tag
    assert "perf/rss_memory_mb" in tags
    assert all(np.isfinite(p.value) for p in cls_events.Scalars("train/loss"))


def test_layer_statistics(cls_events, cls_run):
    tags = set(cls_events.Tags()["scalars"])
    for kind in ("grad_norm", "weight_norm", "update_ratio"):
        for name in [*PARAMS, "_all"]:
            assert f"layers/{kind}/{name}" in tags
    # layer_stats_every=2: even steps only; the update ratio of a step is finite and small
    assert {p.step for p in cls_events.Scalars("layers/weight_norm/_all")} == set(range(2, _steps(cls_run) + 1, 2))
    ratios = [p.value for p in cls_events.Scalars("layers/update_ratio/_all")]
    assert all(0 < r < 1 for r in ratios)


def test_global_norm_is_consistent_with_layers(cls_events):
    # the global weight norm is the root of the summed squares of the per-layer norms
    step = cls_events.Scalars("layers/weight_norm/_all")[-1].step
    layer = [next(p.value for p in cls_events.Scalars(f"layers/weight_norm/{n}") if p.step == step) for n in PARAMS]
    total = next(p.value for p in cls_events.Scalars("layers/weight_norm/_all") if p.step == step)
    assert total == pytest.approx(np.sqrt(np.sum(np.square(layer))), rel=1e-4)


def test_eval_scalars_train_and_val(cls_events, cls_run):
    tags = set(cls_events.Tags()["scalars"])
    assert {"val/loss", "val/accuracy", "train/accuracy", "train/eval_loss", "train/epoch_loss",
            "val/roc_auc", "run/seconds"} <= tags
    assert any(t.startswith("best/") for t in tags)
    assert len(cls_events.Scalars("val/accuracy")) == 3  # one per epoch
    metrics = json.loads((cls_run / "metrics.json").read_text())
    assert cls_events.Scalars("run/seconds")[-1].value == pytest.approx(metrics["training"]["seconds"], abs=0.01)


def test_histograms_weights_grads_activations(cls_events):
    tags = set(cls_events.Tags()["histograms"])
    for n in PARAMS:
        assert f"weights/{n}" in tags and f"grads/{n}" in tags
    assert any(t.startswith("activations/") and t.endswith("ReLU") for t in tags)
    hist = cls_events.Histograms("weights/head.weight")
    assert [h.step for h in hist] == [5, 10, 15]
    h = hist[-1].histogram_value
    assert h.num == 16 * 10 and h.min <= h.max and sum(h.bucket) == h.num


def test_images(cls_events):
    tags = set(cls_events.Tags()["images"])
    assert {"inputs/samples", "inputs/augmented", "val/confusion_matrix", "val/roc", "val/worst_misclassified"} <= tags
    assert len(cls_events.Images("val/confusion_matrix")) == 3
    for tag in tags:
        ev = cls_events.Images(tag)[-1]
        img = Image.open(io.BytesIO(ev.encoded_image_string))
        assert img.size == (ev.width, ev.height) and min(img.size) > 100
        assert len(set(np.asarray(img.convert("L")).ravel().tolist())) > 5  # not blank


def test_pr_curves_text_graph_layout(cls_events, cls_run):
    tensors = set(cls_events.Tags()["tensors"])
    meta = json.loads((cls_run / "meta.json").read_text())
    assert {f"pr/{c}" for c in meta["class_names"]} <= tensors
    assert cls_events.SummaryMetadata("pr/3").plugin_data.plugin_name == "pr_curves"
    assert {"run/config/text_summary", "run/environment/text_summary", "run/model/text_summary",
            "val/predictions/text_summary", "custom_scalars__config__"} <= tensors
    config_text = cls_events.Tensors("run/config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert yaml.safe_load("\n".join(line[4:] for line in config_text.splitlines()))["optim"]["name"] == "adam"
    env_text = cls_events.Tensors("run/environment/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "torch" in env_text and "seed" in env_text and "tensorboardX" in env_text
    assert cls_events.Tags()["graph"]

    from tensorboardX.proto import layout_pb2

    layout = layout_pb2.Layout.FromString(cls_events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["accuracy (train vs val)"] == ["train/accuracy", "val/accuracy"]
    assert "val/loss" in charts["loss (train vs val)"] and "train/loss" in charts["loss (train vs val)"]


def test_hparams_in_run_dir_with_metrics(cls_events):
    content = cls_events.PluginTagToContent("hparams")
    assert set(content) == {hp.EXPERIMENT_TAG, hp.SESSION_START_TAG, hp.SESSION_END_TAG}
    values = hp.parse_session_start(content[hp.SESSION_START_TAG])
    assert values["model.name"] == "cnn" and values["optim.lr"] == pytest.approx(1e-3)
    assert values["model.channels"] == "[8, 8]"  # a list, kept readable
    assert values["optim.betas"] == "[0.9, 0.999]"
    assert "optim.clip_norm" not in values  # None: an empty cell, not a crash
    assert not any(k.startswith("log.") for k in values)

    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    exp = HParamsPluginData.FromString(content[hp.EXPERIMENT_TAG]).experiment
    metric_tags = [m.name.tag for m in exp.metric_infos]
    scalars = set(cls_events.Tags()["scalars"])
    assert {"val/accuracy", "val/loss", "run/seconds"} <= set(metric_tags)
    assert set(metric_tags) <= scalars  # every metric column has values in this very run
    assert {h.name for h in exp.hparam_infos} >= {"optim.clip_norm", "model.hidden", "model.channels"}


def test_projector(cls_run):
    config = (cls_run / "projector_config.pbtxt").read_text()
    assert "tensor_path" in config and "metadata_path" in config and "sprite" in config
    sub = next((cls_run / "projector").iterdir())
    feats = np.loadtxt(sub / "tensors.tsv", delimiter="\t")
    assert feats.shape == (40, 16)  # embedding_samples x dense
    rows = (sub / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "label\tpredicted\tcorrect" and len(rows) == 41
    sprite = Image.open(sub / "sprite.png")
    assert sprite.size[0] == sprite.size[1] == 7 * 8  # ceil(sqrt(40)) thumbnails of 8 px


def test_regression_views(reg_events):
    images = set(reg_events.Tags()["images"])
    assert "val/predicted_vs_true" in images and "val/confusion_matrix" not in images
    scalars = set(reg_events.Tags()["scalars"])
    assert {"train/r2", "val/r2", "train/mse", "val/mse"} <= scalars
    assert not any(t.startswith("pr/") for t in reg_events.Tags()["tensors"])
    assert "inputs/samples/text_summary" in reg_events.Tags()["tensors"]  # tables get a text sample


def test_logging_does_not_change_training(tmp_path, train_cls):
    """Summaries use their own random streams, eval mode and no_grad: with dropout and batch norm
    (random draws and running statistics) the run ends with exactly the same metrics."""
    extra = ("model.dropout=0.3", "model.batch_norm=true")
    logged = train_cls(tmp_path, "logged", *extra)
    plain = train_cls(tmp_path, "plain", *extra, "log.tensorboard=false")
    a = json.loads((logged / "metrics.json").read_text())
    b = json.loads((plain / "metrics.json").read_text())
    assert a["test"] == b["test"] and a["val"] == b["val"]
    assert list(logged.glob("*tfevents*")) and not list(plain.glob("*tfevents*"))



def test_views_drawn_in_the_writer_thread(tmp_path, read_events):
    """The GPU arrangement (figures, grids and projector in the writer thread), run on the CPU."""
    import torch

    from zerotune.config import load_config
    from zerotune.data import build_data
    from zerotune.runload.load import build_model_for
    from zerotune.tasks.supervised import Task
    from zerotune.track.tensorboard import TensorBoardLogger
    from zerotune.train.loop import fit

    cfg = load_config(None, ["data.train_per_class=10", "model.channels=[4]", "model.dense=8", "train.epochs=2",
                             "log.progress=false", "log.embedding_samples=20"])
    data = build_data(cfg.data)
    task = Task(data.meta, cfg.train.loss, cfg.train.label_smoothing)
    logger = TensorBoardLogger(tmp_path, cfg, data, task, background_views=True)
    fit(build_model_for(cfg, data.meta), data, task, cfg, tmp_path, torch.device("cpu"), [logger])
    acc = read_events(tmp_path)
    assert {"val/confusion_matrix", "val/roc", "val/worst_misclassified", "inputs/samples"} <= set(acc.Tags()["images"])
    assert len(acc.Images("val/confusion_matrix")) == 2
    assert (tmp_path / "projector_config.pbtxt").exists() and not logger.sink.errors


def test_evaluation_views_are_throttled_by_time_but_the_last_evaluation_gets_them(tmp_path, train_cls):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train_cls(tmp_path, "throttled", "log.views_min_seconds=3600")
    acc = EventAccumulator(str(run), size_guidance={"images": 0})
    acc.Reload()
    last_step = acc.Scalars("val/loss")[-1].step
    for tag in ("val/confusion_matrix", "val/worst_misclassified"):
        assert [e.step for e in acc.Images(tag)] == [acc.Scalars("val/loss")[0].step, last_step], tag
