"""TensorBoard for language models: loss, perplexity, tokens/s, MFU, attention maps and samples.

Built on :class:`~zerotune.track.tensorboard.TensorBoardLogger`, which keeps doing what applies to
every model (loss, learning rate, gradient norms, per-layer statistics, histograms, graph,
hparams). In place of the classification views, each evaluation (at most every
``log.views_min_seconds``, and always the last) writes a text sample from a fixed prompt and the
attention maps of that prompt, one image per layer with a panel per head; the projector shows the
token embeddings.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..train.callbacks import TrainState
from ..train.peak import matmul_peak_flops
from . import hparams, jobs, summaries, text
from .tensorboard import TensorBoardLogger

PROMPT_TOKENS = 24  # default prompt: the start of the validation text
MAX_MAP_TOKENS = 48  # attention maps beyond this many tokens are unreadable
MAP_PIXELS = 192  # about this many pixels per side of one head's map
MAP_GAP = 6  # white pixels between heads


def layout() -> dict:
    """Charts of the CUSTOM SCALARS tab for a language model."""
    return {
        "1 curves": {
            "loss (train vs val)": ["Multiline", ["train/loss", "train/epoch_loss", "val/loss"]],
            "perplexity (train vs val)": ["Multiline", ["train/perplexity", "val/perplexity"]],
            "learning rate": ["Multiline", ["train/lr"]],
            "gradient norm, global (before clipping)": ["Multiline", ["train/grad_norm"]],
        },
        "2 performance": {
            "tokens per second": ["Multiline", ["perf/tokens_per_sec"]],
            "model FLOPs utilisation (vs measured matmul peak)": ["Multiline", ["perf/mfu"]],
            "step time (ms)": ["Multiline", ["perf/step_time_ms"]],
            "share of time taking batches": ["Multiline", ["perf/data_wait_share"]],
            "memory (MiB)": ["Multiline", [r"perf/.*memory_mb"]],
        },
        "3 layers": {
            "gradient norm per layer": ["Multiline", [r"layers/grad_norm/.*"]],
            "update / weight ratio per layer": ["Multiline", [r"layers/update_ratio/.*"]],
        },
    }


class LMBoard(TensorBoardLogger):
    """The TensorBoard callback of a language-model run (arguments as TensorBoardLogger's;
    ``data.tokenizer`` decodes samples and labels the attention maps)."""

    def __init__(self, run_dir, config, data, task):
        super().__init__(run_dir, config, data, task, background_views=False)
        self.tokenizer = data.tokenizer
        self.block_size = int(data.meta.input_shape[0])
        self.flops_per_token = 0
        self.peak = 0.0

    def on_fit_start(self, state: TrainState) -> None:
        model = state.model
        device = next(model.parameters()).device
        if hasattr(model, "flops_per_token"):
            self.flops_per_token = model.flops_per_token(self.block_size)
        precision = self.config.train.precision
        # The peak of the dtype the matmuls run in: autocast bf16 also on a CPU (AVX512-BF16/AMX
        # matmuls run about 2x the float32 rate there, so a float32 peak gave an MFU above 1).
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "32": torch.float32}[precision]  # as train/loop.py's autocast
        self.peak = matmul_peak_flops(device, dtype)
        self.prompt = self._prompt()
        super().on_fit_start(state)

    def on_step_end(self, state: TrainState) -> None:
        super().on_step_end(state)
        if state.step % self.log.scalars_every:
            return
        tokens_per_sec = state.samples_per_sec * self.block_size
        items = [("train/perplexity", state.loss.exp()), ("perf/tokens_per_sec", tokens_per_sec)]
        if self.peak and self.flops_per_token:
            items.append(("perf/mfu", self.flops_per_token * tokens_per_sec / self.peak))
        self.sink.scalars(state.step, tuple(items))

    # -- start ----------------------------------------------------------------------------------

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
        meta = self.data.meta
        size = [["parameters", f"{sum(p.numel() for p in model.parameters()):,}"]]
        if hasattr(model, "num_params"):
            size.append(["parameters without position embeddings", f"{model.num_params():,}"])
        size += [["FLOPs per token (forward + backward)", f"{self.flops_per_token:,}"],
                 ["context (tokens)", str(self.block_size)],
                 ["vocabulary", f"{meta.num_classes:,} ({getattr(self.tokenizer, 'kind', '?')})"],
                 ["tokens (train / val / test)", " / ".join(f"{meta.sizes.get(k, 0):,}" for k in ("train", "val", "test"))],
                 ["measured matmul peak", f"{self.peak / 1e9:,.1f} GFLOP/s"]]
        records = [
            (summaries.custom_scalars(layout()), 0),
            (hparams.experiment_summary(kinds, metric_cols), 0),
            (hparams.session_start_summary(values, self.run_dir.name), 0),
            (summaries.text("run/config", text.code_block(cfg.to_yaml())), 0),
            (summaries.text("run/model", text.table(["", ""], size) + "\n\n" + text.model_summary(model)), 0),
            (summaries.text("samples/prompt", text.code_block(self.prompt)), 0),
        ]
        if self.log.attention_maps and hasattr(model, "attention_maps"):
            records.append((summaries.text("attention/tokens", self._attention_tokens()), 0))
        records += self._environment_records()
        self.sink.write(records)
        self._safe("model summary", self._layer_summary, model)
        if self.log.graph:
            self._safe("graph", self._graph, model)

    # -- evaluation -----------------------------------------------------------------------------

    def _eval_views(self, state: TrainState, final: bool = False) -> None:
        now = time.monotonic()
        last = state.step >= state.total_steps or state.epoch >= state.epochs
        self._views_skipped = not (final or last) and now - self._views_time < self.log.views_min_seconds
        if self._views_skipped:
            return
        self._views_time = now
        step, records = state.step, []
        if self.log.sample_tokens:
            self._safe("text samples", lambda: records.append(
                (summaries.text("samples/generated", self._sample(state.model)), step)))
        if self.log.attention_maps and hasattr(state.model, "attention_maps"):
            self._safe("attention maps", lambda: records.extend(
                (summaries.image(f"attention/layer_{i}", img), step)
                for i, img in enumerate(self._attention_images(state.model))))
        self.sink.write(records)

    def _sample(self, model) -> str:
        from ..lm.sampling import complete

        out = complete(model, self.tokenizer, self.prompt, max_new_tokens=self.log.sample_tokens,
                       temperature=0.8, seed=self.config.train.seed)
        return text.code_block(self.prompt + out)

    def _attention_images(self, model) -> list[np.ndarray]:
        """One image per layer, its heads side by side; query tokens down, key tokens across.

        Drawn with NumPy and a colour map rather than Matplotlib axes: a figure with tick labels
        costs about a second per layer, which at every evaluation would slow a small model's run
        by a third. The tokens on the axes are in the text summary ``attention/tokens``.
        """
        from matplotlib import colormaps

        ids = self.tokenizer.encode(self.prompt)[:min(MAX_MAP_TOKENS, self.block_size)]
        maps = model.attention_maps(torch.tensor([ids], device=self._device)).float().cpu().numpy()  # (L, H, T, T)
        t = len(ids)
        scale = max(1, MAP_PIXELS // t)
        colour = colormaps["viridis"]
        out = []
        for layer in maps:
            panels = [np.kron(colour(head)[..., :3], np.ones((scale, scale, 1))) for head in layer]  # (tS, tS, 3)
            gap = np.ones((t * scale, MAP_GAP, 3))
            row = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
            out.append((row * 255).round().astype(np.uint8))
        return out

    def _attention_tokens(self) -> str:
        ids = self.tokenizer.encode(self.prompt)[:min(MAX_MAP_TOKENS, self.block_size)]
        rows = [[i, repr(self.tokenizer.decode([tok]))] for i, tok in enumerate(ids)]
        return ("Rows are queries, columns are keys, both in this order; bright is high attention "
                "(viridis, 0 to 1).\n\n" + text.table(["position", "token"], rows))

    # -- end --------------------------------------------------------------------------------------

    def _projector(self, state: TrainState) -> None:
        """The token embeddings in the PROJECTOR tab, labelled with their text."""
        wte = getattr(getattr(state.model, "features", None), "wte", None)
        if not isinstance(wte, torch.nn.Embedding):
            return
        vectors = wte.weight.detach().float().cpu().numpy()
        k = min(len(vectors), self.log.embedding_samples)
        # Two columns: with a single one the projector would read the header as a label.
        rows = [[repr(self.tokenizer.decode([i]))[1:-1].replace("\t", "\\t") or "(empty)", str(i)] for i in range(k)]
        self._heavy(jobs.projector, self.run_dir, state.step, vectors[:k], rows, ["token", "id"], None)
