"""TensorBoard for language models: loss, perplexity, tokens/s, MFU, attention maps and samples.

Scalars go through the :class:`~zerotune.track.sink.EventSink` like every run's. At each evaluation
(at most every ``log.views_min_seconds``, and always at the last) the model writes a text sample
from a fixed prompt and the attention maps of that prompt, one image per layer with a panel per head.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..train.callbacks import Callback, TrainState
from ..train.peak import matmul_peak_flops
from . import hparams, summaries, text
from .sink import EventSink

PROMPT_TOKENS = 24  # default prompt: the start of the validation text
MAX_MAP_TOKENS = 48  # attention maps beyond this many tokens are unreadable


def layout() -> dict:
    return {
        "1 curves": {
            "loss (train vs val)": ["Multiline", ["train/loss", "train/epoch_loss", "val/loss"]],
            "perplexity (train vs val)": ["Multiline", ["train/perplexity", "val/perplexity"]],
            "learning rate": ["Multiline", ["train/lr"]],
            "gradient norm (before clipping)": ["Multiline", ["train/grad_norm"]],
        },
        "2 performance": {
            "tokens per second": ["Multiline", ["perf/tokens_per_sec"]],
            "model FLOPs utilisation (vs measured matmul peak)": ["Multiline", ["perf/mfu"]],
            "step time (ms)": ["Multiline", ["perf/step_time_ms"]],
            "memory (MiB)": ["Multiline", [r"perf/.*memory_mb"]],
        },
    }


class LMBoard(Callback):
    """The TensorBoard callback of a language-model run.

    Args:
        run_dir: the run directory.
        config: the run's Config (``log`` intervals, sample options, precision).
        data: the DataBundle (its tokenizer decodes samples; the val split gives the default prompt).
        task: the LMTask.
    """

    def __init__(self, run_dir: Path, config, data, task):
        self.run_dir, self.config, self.log = Path(run_dir), config, config.log
        self.data, self.task = data, task
        self.tokenizer = data.tokenizer
        self.block_size = int(data.meta.input_shape[0])
        self.sink: EventSink | None = None
        self.flops_per_token = 0
        self.peak = 0.0
        self._views_time = float("-inf")
        self._views_step = -1

    def on_fit_start(self, state: TrainState) -> None:
        import time

        resumed = state.resumed_from_step is not None
        self.sink = EventSink(self.run_dir, self.log.flush_secs, purge_step=state.step if resumed else None)
        model = state.model
        device = next(model.parameters()).device
        if hasattr(model, "flops_per_token"):
            self.flops_per_token = model.flops_per_token(self.block_size)
        gpu_bf16 = device.type == "cuda" and self.config.train.precision != "32"
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.train.precision) if gpu_bf16 else torch.float32
        self.peak = matmul_peak_flops(device, dtype)
        self._time = time
        self.prompt = self._prompt()
        if not resumed:
            self._write_start(state)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.log.scalars_every:
            return
        tokens_per_sec = state.samples_per_sec * self.block_size
        items = [("train/loss", state.loss), ("train/perplexity", state.loss.exp()), ("train/lr", state.lr),
                 ("perf/tokens_per_sec", tokens_per_sec), ("perf/step_time_ms", state.step_time * 1000)]
        if self.peak and self.flops_per_token:
            items.append(("perf/mfu", self.flops_per_token * tokens_per_sec / self.peak))
        if state.grad_norm is not None:
            items.append(("train/grad_norm", state.grad_norm))
        self.sink.scalars(state.step, tuple(items))

    def on_eval_end(self, state: TrainState) -> None:
        values = [(k, v) for k, v in state.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)]
        values.append(("train/epoch", state.epoch))
        if state.best is not None:
            values.append((f"best/{state.monitor}", state.best))
        self.sink.scalars(state.step, tuple(values))
        last = state.step >= state.total_steps or state.epoch >= state.epochs
        now = self._time.monotonic()
        if last or now - self._views_time >= self.log.views_min_seconds:
            self._views(state)
            self._views_time = now

    def on_fit_end(self, state: TrainState) -> None:
        if self.sink is None:
            return
        if self._views_step != state.step:  # e.g. stopped early between throttled views
            self._views(state)
        final = [("run/seconds", state.elapsed)]
        if state.best is not None:
            final.append((f"best/{state.monitor}", state.best))
        self.sink.scalars(state.step, tuple(final))
        self.sink.write([(hparams.session_end_summary(True), state.step)])
        self.sink.close()

    # -- summaries ------------------------------------------------------------------------------

    def _prompt(self) -> str:
        if self.log.sample_prompt:
            return self.log.sample_prompt
        val = self.data.val if self.data.val.n_tokens else self.data.train
        return self.tokenizer.decode([int(t) for t in val.tokens[:min(PROMPT_TOKENS, self.block_size)]])

    def _write_start(self, state: TrainState) -> None:
        cfg, model = self.config, state.model
        kinds, values = hparams.resolve(cfg.to_dict())
        metric_cols = {f"best/{state.monitor}": f"best {state.monitor}", "val/loss": "val loss",
                       "val/perplexity": "val perplexity", "train/loss": "train loss", "run/seconds": "training seconds"}
        size = [["parameters", f"{sum(p.numel() for p in model.parameters()):,}"]]
        if hasattr(model, "num_params"):
            size.append(["parameters without position embeddings", f"{model.num_params():,}"])
        size += [["FLOPs per token (forward + backward)", f"{self.flops_per_token:,}"],
                 ["context (tokens)", str(self.block_size)],
                 ["vocabulary", f"{self.data.meta.num_classes:,} ({getattr(self.tokenizer, 'kind', '?')})"],
                 ["tokens (train / val / test)", " / ".join(f"{self.data.meta.sizes.get(k, 0):,}" for k in ("train", "val", "test"))],
                 ["measured matmul peak", f"{self.peak / 1e9:,.1f} GFLOP/s"]]
        records = [
            (summaries.custom_scalars(layout()), 0),
            (hparams.experiment_summary(kinds, metric_cols), 0),
            (hparams.session_start_summary(values, self.run_dir.name), 0),
            (summaries.text("run/config", text.code_block(cfg.to_yaml())), 0),
            (summaries.text("run/model", text.table(["", ""], size) + "\n\n" + text.model_summary(model)), 0),
            (summaries.text("samples/prompt", text.code_block(self.prompt)), 0),
        ]
        env_file = self.run_dir / "env.json"
        if env_file.exists():
            env = json.loads(env_file.read_text(encoding="utf-8"))
            records.append((summaries.text("run/environment", text.environment(env)), 0))
        self.sink.write(records)

    def _views(self, state: TrainState) -> None:
        self._views_step = state.step
        records = []
        try:
            if self.log.sample_tokens:
                records.append((summaries.text("samples/generated", self._sample(state.model)), state.step))
            if self.log.attention_maps and hasattr(state.model, "attention_maps"):
                records += [(summaries.image(f"attention/layer_{i}", img), state.step)
                            for i, img in enumerate(self._attention_images(state.model))]
        except Exception as e:  # a view must never stop training; say what failed instead
            records.append((summaries.text("run/warnings", f"samples or attention maps failed: {type(e).__name__}: {e}"),
                            state.step))
        self.sink.write(records)

    def _sample(self, model) -> str:
        from ..sampling import complete

        out = complete(model, self.tokenizer, self.prompt, max_new_tokens=self.log.sample_tokens,
                       temperature=0.8, seed=self.config.train.seed)
        return text.code_block(self.prompt + out)

    def _attention_images(self, model) -> list[np.ndarray]:
        from .figures import new_figure, to_rgb

        device = next(model.parameters()).device
        ids = self.tokenizer.encode(self.prompt)[:min(MAX_MAP_TOKENS, self.block_size)]
        maps = model.attention_maps(torch.tensor([ids], device=device)).float().cpu().numpy()  # (L, H, T, T)
        labels = [self.tokenizer.decode([i]).replace("\n", "⏎") or "·" for i in ids]
        out = []
        n_heads, t = maps.shape[1], len(ids)
        side = max(2.5, 0.12 * t)
        for layer in maps:
            fig = new_figure(side * n_heads, side + 0.4)
            for h in range(n_heads):
                ax = fig.add_subplot(1, n_heads, h + 1)
                ax.imshow(layer[h], cmap="viridis", vmin=0.0, vmax=1.0)
                ax.set_title(f"head {h}", fontsize=8)
                ax.set_xticks(range(t), labels, fontsize=5, rotation=90)
                ax.set_yticks(range(t), labels if h == 0 else [], fontsize=5)
            fig.tight_layout()
            out.append(to_rgb(fig))
        return out
