"""The TensorBoard callback: every tab of TensorBoard filled from one training run.

On the hot path (``on_step_end``) this only queues tensors that are already there (loss,
gradient norm), and every ``layer_stats_every`` / ``histograms_every`` steps a few small
statistics computed on the device; reading them back, building protos and writing happen in
the :class:`~zerotune.track.sink.EventSink` thread. Evaluation-time views (figures, images, PR
curves, predictions) need one extra pass over the validation split at each evaluation; they are
drawn in the writer thread next to a GPU and right away on a CPU (see ``on_fit_start``). Only
rank 0 should be given this callback.
"""

from __future__ import annotations

import time

import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..run.files import RunDir
from ..train.callbacks import Callback, TrainState
from . import hparams, images, jobs, stats, summaries, text
from .layout import layout
from .sink import EventSink

GRID_SAMPLES = 32  # input samples shown at the start
WORST_SAMPLES = 24  # worst-misclassified examples per evaluation
ACTIVATION_BATCH = 64
EVAL_BATCH = 512


class TensorBoardLogger(Callback):
    """Writes scalars, histograms, images, figures, PR curves, graph, hparams, projector and text.

    Args:
        run_dir: the run directory (the event file goes straight into it).
        config: the run's Config; ``config.log`` holds the interval of each kind of summary.
        data: the DataBundle (samples for images, the validation split for evaluation views).
        task: the Task (outputs, target units, metrics).
        background_views: draw figures and images in the writer thread (True) or at evaluation
            time in the training thread (False); None chooses by device (see on_fit_start).
    """

    def __init__(self, run_dir: Path, config, data, task, background_views: bool | None = None):
        self.run_dir = Path(run_dir)
        self.config = config
        self.log = config.log
        self.data, self.task = data, task
        self.sink: EventSink | None = None
        self._names: tuple[str, ...] = ()
        self._params: list[torch.Tensor] = []
        self._previous: list[torch.Tensor] | None = None
        self._snapshot_buffer: list[torch.Tensor] | None = None
        self._warned: set[str] = set()
        self._plots: jobs.ClassificationPlots | None = None
        self._background_views = background_views
        self._views_time = float("-inf")  # when evaluation figures were last drawn
        self._views_skipped = False
        self._views_step = -1

    # -- events -------------------------------------------------------------------------------

    def on_fit_start(self, state: TrainState) -> None:
        resumed = state.resumed_from_step is not None
        # Points a killed process wrote from the first step this one logs are hidden. A resume
        # redoes only the steps after its checkpoint (whose own points were on disk before it
        # was, see state_dict); a run that starts from step 0 in a directory a killed run
        # left events in writes everything again.
        self.sink = EventSink(self.run_dir, self.log.flush_secs, purge_step=state.step + 1 if resumed else 0)
        named = [(n, p) for n, p in state.model.named_parameters() if p.requires_grad]
        self._names = tuple(n for n, _ in named)
        self._params = [p for _, p in named]
        self._device = self._params[0].device if self._params else torch.device("cpu")
        # Figures and images cost tenths of a second of Python. Next to a GPU they are drawn in
        # the writer thread while the GPU trains; on a CPU that thread would fight the training
        # threads for the same cores and for the GIL (slowing every step far more than the
        # drawing costs), so they are drawn right away, as part of the evaluation.
        background = self._device.type == "cuda" if self._background_views is None else self._background_views
        self._heavy = self.sink.submit if background else self._now
        names = self._names + ("_all",)
        self._layer_tags = tuple(f"layers/{kind}/{n}" for kind in ("grad_norm", "weight_norm", "update_ratio")
                                 for n in names)
        self._hist_tags = tuple(f"weights/{n}" for n in self._names)
        if not resumed:
            self._safe("start summaries", self._write_start, state)
        elif self.log.layer_stats_every and (state.step + 1) % self.log.layer_stats_every == 0:
            # the killed run took this copy at the checkpoint's step; the restored weights are it
            self._safe("layer statistics", self._snapshot)

    def on_step_end(self, state: TrainState) -> None:
        s, log = state.step, self.log
        if s % log.scalars_every == 0:
            items = [("train/loss", state.loss), ("train/lr", state.lr),
                     ("perf/samples_per_sec", state.samples_per_sec), ("perf/step_time_ms", state.step_time * 1000),
                     ("perf/data_wait_share", state.data_share)]
            if state.grad_norm is not None:
                items.append(("train/grad_norm", state.grad_norm))
            self.sink.scalars(s, tuple(items))
        every = log.layer_stats_every
        if every:
            if s % every == 0:
                self._safe("layer statistics", self._layer_stats, s)
            if (s + 1) % every == 0:  # the update of step s+1 is measured against this copy
                self._safe("layer statistics", self._snapshot)
        if log.histograms_every and s % log.histograms_every == 0:
            self._safe("histograms", self._histograms, state)

    def on_eval_end(self, state: TrainState) -> None:
        values = [(k, v) for k, v in state.metrics.items() if isinstance(v, (int, float))]
        values.append(("train/epoch", state.epoch))
        if state.best is not None:
            values.append((f"best/{state.monitor}", state.best))
        self.sink.scalars(state.step, tuple(values))
        self._safe("evaluation summaries", self._eval_views, state)
        self._views_step = state.step

    def state_dict(self) -> dict:
        # Called as a checkpoint is taken: everything logged up to its step goes to disk first,
        # since a run resumed from it never logs those steps again.
        if self.sink is not None:
            self.sink.flush()
        return {}

    def on_fit_end(self, state: TrainState) -> None:
        if self.sink is None:
            return
        if self._views_skipped and self._views_step == state.step:  # the final evaluation's views
            self._safe("evaluation summaries", self._eval_views, state, True)
        if self.log.embeddings:
            self._safe("projector", self._projector, state)
        final = [("run/seconds", state.elapsed)]
        if state.best is not None:
            final.append((f"best/{state.monitor}", state.best))
        self.sink.scalars(state.step, tuple(final))
        self.sink.write([(hparams.session_end_summary(True), state.step)])
        self.sink.close()

    # -- start of training --------------------------------------------------------------------

    def _write_start(self, state: TrainState) -> None:
        cfg = self.config
        kinds, values = hparams.resolve(cfg.to_dict())
        metric_cols = hparams.metric_columns(self.task.kind, state.monitor)
        records = [
            (summaries.custom_scalars(layout(self.task.kind)), 0),
            (hparams.experiment_summary(kinds, metric_cols), 0),
            (hparams.session_start_summary(values, self.run_dir.name), 0),
            (summaries.text("run/config", text.code_block(cfg.to_yaml())), 0),
            (summaries.text("run/model", text.model_summary(state.model)), 0),
        ]
        records += self._environment_records()
        self.sink.write(records)
        self._safe("model summary", self._layer_summary, state.model)
        if self.log.graph:
            self._safe("graph", self._graph, state.model)
        if self.log.images:
            self._safe("input images", self._input_samples)

    def _layer_summary(self, model: torch.nn.Module) -> None:
        """`zerotune summary`'s table (layers, shapes, trainable/frozen parameters, MACs) in the Text tab."""
        from ..models.summary import summarize

        table = summarize(model, self.data.train.sample_inputs(1).to(self._device)).table()
        self.sink.write([(summaries.text("model/summary", text.code_block(table)), 0)])

    def _environment_records(self) -> list:
        """The run's env.json (versions, device, seed) as a text summary, if the run has one."""
        env_file = RunDir(self.run_dir).env
        if not env_file.exists():
            return []
        env = json.loads(env_file.read_text(encoding="utf-8"))
        return [(summaries.text("run/environment", text.environment(env)), 0)]

    def _graph(self, model: torch.nn.Module) -> None:
        with stats.eval_mode(model):  # no dropout randomness, no batch-norm statistics update while tracing
            event = summaries.graph_event(model, self.data.train.sample_inputs(2).to(self._device))
        self.sink.write([(event, 0)])

    def _input_samples(self) -> None:
        meta, train = self.data.meta, self.data.train
        n = min(GRID_SAMPLES, len(train))
        if not meta.is_image:
            self.sink.write([(summaries.text("inputs/samples", self._table_samples(n)), 0)])
            return
        pictures = images.to_display(train.x[:n], meta.x_mean, meta.x_std)
        captions = [self._label(v) for v in train.y[:n].tolist()]
        self._heavy(jobs.image_grid, "inputs/samples", pictures, captions, 0)
        if self.config.data.augment.enabled:
            self._augmented_samples()
        if self.config.data.augment.mixing:
            self._mixed_samples()

    def _augmented_samples(self) -> None:
        """8 training images, each beside 3 augmented views (every per-image op that is on)."""
        from ..data.augment import Augmenter

        meta, train = self.data.meta, self.data.train
        augment = Augmenter(self.config.data.augment, meta.x_mean, meta.x_std)
        # A generator of its own: drawing here must not shift the training run's random stream.
        gen = torch.Generator(device=self._device).manual_seed(self.config.train.seed + 7919)
        x = train.x[:8].to(self._device)
        views = torch.stack([x] + [augment(x, gen) for _ in range(3)], dim=1).flatten(0, 1)  # (8*4, C, H, W)
        pics = images.to_display(views, meta.x_mean, meta.x_std)
        caps = [("original\n" if j == 0 else "augmented\n") + self._label(train.y[i].item())
                for i in range(len(x)) for j in range(4)]
        self._heavy(jobs.image_grid, "inputs/augmented", pics, caps, 0, 8)

    def _mixed_samples(self) -> None:
        """Two mixed batches of 8 training images (mixup or cutmix), captioned with both labels and their shares."""
        from ..data.mixing import Mixer

        meta, train = self.data.meta, self.data.train
        mix = Mixer(self.config.data.augment.model_copy(update={"mix_prob": 1.0}))  # show mixed batches only
        gen = torch.Generator(device=self._device).manual_seed(self.config.train.seed + 7927)
        x, y = train.x[:8].to(self._device), train.y[:8].to(self._device)
        pics, caps = [], []
        for _ in range(2):
            mixed, y_a, y_b, lam = mix(x, y, gen)
            pics.append(mixed)
            caps += [f"{lam:.2f} {self._label(a)}\n{1 - lam:.2f} {self._label(b)}"
                     for a, b in zip(y_a.tolist(), y_b.tolist())]
        self._heavy(jobs.image_grid, "inputs/mixed", images.to_display(torch.cat(pics), meta.x_mean, meta.x_std),
                    caps, 0, 8)

    def _table_samples(self, n: int) -> str:
        meta, train = self.data.meta, self.data.train
        x = train.x[:n].reshape(n, -1).float()
        if meta.x_mean is not None and meta.x_std is not None and len(meta.x_mean) == x.shape[1]:
            x = x * torch.tensor(meta.x_std) + torch.tensor(meta.x_mean)
        names = meta.feature_names or [f"x{i}" for i in range(x.shape[1])]
        cols = min(len(names), 12)  # a wide table is unreadable in the Text tab
        rows = [[self._label(y)] + [f"{v:.4g}" for v in row[:cols]] for row, y in zip(x.tolist(), train.y[:n].tolist())]
        return text.table(["target"] + names[:cols], rows)

    # -- per step -----------------------------------------------------------------------------

    def _layer_stats(self, step: int) -> None:
        with torch.no_grad():
            packed = stats.layer_stats(self._params, [p.grad for p in self._params], self._previous)
        rows = 3 if self._previous is not None else 2
        self._previous = None
        width = len(self._names) + 1
        self.sink.scalars(step, ((self._layer_tags[: rows * width], packed[:rows].reshape(-1)),))

    def _snapshot(self) -> None:
        self._previous = self._snapshot_buffer = stats.snapshot(self._params, self._snapshot_buffer)

    def _histograms(self, state: TrainState) -> None:
        with torch.no_grad():
            tensors, tags = list(self._params), list(self._hist_tags)
            for n, p in zip(self._names, self._params):
                if p.grad is not None:
                    tensors.append(p.grad)
                    tags.append(f"grads/{n}")
            if self.log.activations:
                names, acts = self._activations(state.model)
                tensors += acts
                tags += [f"activations/{n}" for n in names]
            packed = stats.hist_stats_many(tensors)
        self.sink.submit(jobs.histograms, tuple(tags), packed, state.step)

    def _activations(self, model: torch.nn.Module):
        """Outputs of every leaf module on a fixed validation batch, in eval mode."""
        split = self.data.val if len(self.data.val) else self.data.train
        x = split.sample_inputs(ACTIVATION_BATCH).to(self._device)
        outs: dict[str, torch.Tensor] = {}
        def keep(key: str):
            return lambda _module, _inputs, output: outs.__setitem__(key, output)

        hooks = [m.register_forward_hook(keep(f"{name}.{type(m).__name__}"))
                 for name, m in model.named_modules() if name and not any(True for _ in m.children())]
        try:
            with stats.eval_mode(model):
                model(x)
        finally:
            for h in hooks:
                h.remove()
        names = [n for n, o in outs.items() if torch.is_tensor(o) and o.is_floating_point()]
        return names, [outs[n] for n in names]

    # -- evaluation ---------------------------------------------------------------------------

    def _eval_views(self, state: TrainState, final: bool = False) -> None:
        log, n_eval, step = self.log, state.num_evals, state.step
        # Figures cost tenths of a second; with short epochs drawing them at every evaluation would
        # dominate the run, so they are drawn at most every views_min_seconds (and at the end).
        now = time.monotonic()
        self._views_skipped = not final and now - self._views_time < log.views_min_seconds
        due = {k: bool(every) and (final or (n_eval % every == 0 and not self._views_skipped)) for k, every in (
            ("worst", log.worst_every), ("figures", log.figures_every), ("pr", log.pr_curves_every),
            ("predictions", log.predictions_every))}
        if any(due.values()):
            self._views_time = now
        # A scalar costs little: due by the evaluation count alone, so its steps do not depend on the clock
        # (the final pass adds it only where the evaluation at this step did not).
        counted = bool(log.figures_every) and n_eval % log.figures_every == 0
        due["auc"] = bool(log.figures_every) and counted != final
        val, train = self.data.val, self.data.train
        model = state.model
        # Train-split metrics in eval mode on a fixed subset, so train and val share a chart.
        k = min(len(train), max(len(val), 256), 2000)
        if k:
            tr = self._metrics_on(model, train.x[:k], train.y[:k])
            self.sink.scalars(step, tuple(tr.items()))
        if not len(val) or not any(due.values()):
            return
        out = self._outputs(model, val.x)
        y = val.y.numpy() if not val.y.is_cuda else val.y.cpu().numpy()
        if self.task.kind == "classification":
            probs = torch.softmax(out, dim=1).cpu().numpy().astype(np.float64)
            worst = None
            if due["worst"] and self.data.meta.is_image:
                idx = images.worst_indices(probs, y, WORST_SAMPLES)
                worst = (images.to_display(val.x[torch.from_numpy(idx)], self.data.meta.x_mean, self.data.meta.x_std), idx)
            if self._plots is None:
                self._plots = jobs.ClassificationPlots(self._class_names())
            self._heavy(jobs.classification_views, probs, y, self._class_names(), step,
                        figures_on=due["figures"], pr_on=due["pr"], worst=worst,
                        predictions_on=due["predictions"], plots=self._plots, auc_on=due["auc"])
        else:
            pred = self.task.to_target_units(out.squeeze(-1)).cpu().numpy()
            true = self.task.to_target_units(val.y.float()).cpu().numpy()
            self._heavy(jobs.regression_views, pred, true, step, figures_on=due["figures"],
                        predictions_on=due["predictions"])

    def _metrics_on(self, model, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        out = self._outputs(model, x)
        y = y.to(out.device)
        m = {"train/eval_loss": float(self.task.loss(out, y))}
        if self.task.kind == "classification":
            m["train/accuracy"] = float((out.argmax(1) == y).float().mean())
        else:
            pred, true = self.task.to_target_units(out.squeeze(-1)), self.task.to_target_units(y)
            mse = float(((pred - true) ** 2).mean())
            m["train/mse"] = mse
            m["train/r2"] = 1.0 - mse / max(float(true.var(unbiased=False)), 1e-12)
        return m

    def _outputs(self, model: torch.nn.Module, x: torch.Tensor, fn=None) -> torch.Tensor:
        """Model outputs (or ``fn`` outputs) in eval mode, batched, as float32."""
        with stats.eval_mode(model):
            f = fn or model
            outs = [f(chunk.to(self._device, non_blocking=True)).float() for chunk in x.split(EVAL_BATCH)]
        return torch.cat(outs) if outs else torch.empty(0)

    # -- end of training ----------------------------------------------------------------------

    def _projector(self, state: TrainState) -> None:
        model, val, meta = state.model, self.data.val, self.data.meta
        if not len(val) or not isinstance(getattr(model, "features", None), torch.nn.Module):
            return
        from .embeddings import sample_indices

        idx = torch.from_numpy(sample_indices(len(val), self.log.embedding_samples))
        x = val.x[idx]
        feats = self._outputs(model, x, model.features)
        out = self._outputs(model, feats, model.head) if isinstance(getattr(model, "head", None), torch.nn.Module) else None
        y = val.y[idx].tolist()
        if self.task.kind == "classification":
            pred = out.argmax(1).tolist() if out is not None else y
            header = ["label", "predicted", "correct"]
            rows = [[_tsv(self._label(t)), _tsv(self._label(p)), "yes" if t == p else "no"] for t, p in zip(y, pred)]
        else:
            true = self.task.to_target_units(val.y[idx].float()).tolist()
            pred = self.task.to_target_units(out.squeeze(-1)).tolist() if out is not None else true
            header = ["target", "predicted"]
            rows = [[f"{t:.4g}", f"{p:.4g}"] for t, p in zip(true, pred)]
        pictures = images.to_display(x, meta.x_mean, meta.x_std) if meta.is_image else None
        self._heavy(jobs.projector, self.run_dir, state.step, feats.reshape(len(feats), -1).cpu().numpy(),
                    rows, header, pictures)

    # -- helpers ------------------------------------------------------------------------------

    def _class_names(self) -> list[str]:
        meta = self.data.meta
        return list(meta.class_names or [str(i) for i in range(meta.num_classes)])

    def _label(self, y) -> str:
        if self.task.kind == "classification":
            names = self._class_names()
            return names[int(y)] if 0 <= int(y) < len(names) else str(int(y))
        return f"{float(self.task.to_target_units(torch.tensor(float(y)))):.4g}"

    def _now(self, fn, *args, **kwargs) -> None:
        self.sink.write(fn(*args, **kwargs) or [])

    def _safe(self, what: str, fn, *args) -> None:
        """Run a summary step; a failure is reported once and never stops training."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - logging must not end a run
            if what not in self._warned:
                self._warned.add(what)
                print(f"warning: TensorBoard {what} skipped: {type(e).__name__}: {e}", file=sys.stderr)


def _tsv(s: str) -> str:
    return s.replace("\t", " ").replace("\n", " ")
