"""The model behind the server: loaded from a run directory or an exported file, on one backend.

Whatever the source, the server sees one object that takes raw (un-normalised) inputs, or strings
for a text model, and returns classes and probabilities (or regression values in target units).
A text model tokenises with the run's own tokenizer (the run's ``hf/`` copy, or the one exported
beside the file), truncated at the run's ``data.max_length`` exactly as in training.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..compute.threads import check_threads
from ..data.build import normalize_inputs
from ..data.bundle import CHAT_TASKS, DataMeta
from ..errors import UserError
from ..export.runtime import Runner, graph_runner, load_torchscript, onnx_runner, torch_runner
from ..export.signature import Signature, signature_for, signature_from_dict
from ..run.files import RunDir
from .inputs import InputError

BACKENDS = ("auto", "torch", "onnx")
# Raw inputs further than this from the training mean, in training standard deviations, are refused:
# float32 activations overflow on them (3e38 did), and an int8 model's per-batch scales would let
# one such example wreck the predictions of the others batched with it.
MAX_STDS = 1e6
BACKEND_NAMES = {"torch": "pytorch", "onnx": "onnxruntime"}


@dataclass
class ServedModel:
    """A model ready to answer requests.

    Attributes:
        name: the model's registry name (e.g. "cnn").
        meta: the run's data metadata: input shape, normalisation, classes.
        backend: "pytorch" or "onnxruntime".
        source: where it came from: the run, checkpoint, file and format.
        version: a short hash of the weights or model file, so clients can tell models apart.
        runner: the backend call on native batches (normalised float32; token ids padded with -1).
        export: how the file was exported (its sidecar's "export"), or None.
        signature: what the model takes (default: float32 arrays of the data's shape).
        tokenizer: text models: the run's tokenizer.
        max_length: text models: the truncation length of training (``data.max_length``, capped at the
            model's position table).
    """

    name: str
    meta: DataMeta
    backend: str
    source: dict
    version: str
    runner: Runner
    export: dict | None = None
    signature: Signature | None = None
    tokenizer: object | None = None
    max_length: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        if self.signature is None:
            self.signature = signature_for(self.meta)
        if self.text and (self.tokenizer is None or not self.max_length):
            raise UserError("a text model needs its tokenizer and max_length to be served")

    @property
    def classification(self) -> bool:
        return self.meta.task == "classification"

    @property
    def text(self) -> bool:
        return self.signature.kind == "text"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> native token ids (B, L), right-padded with -1 to the longest, tokenised as in training."""
        return self.encode_counted(texts)[0]

    def encode_counted(self, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        """Like `encode`, and the positions of the texts cut to `max_length` tokens.

        Raises:
            InputError: a text the tokenizer cannot read, or one that gives no tokens at all.
        """
        from ..data.text import pad_ids, tokenize_counted

        try:
            with self._lock:  # a fast tokenizer's truncation settings are state shared between calls
                ids, cut = tokenize_counted(self.tokenizer, texts, self.max_length)
        except Exception as e:  # tokenizers raise assorted types on odd input; none is the server's fault
            raise InputError(f"the tokenizer cannot read inputs: {type(e).__name__}: {str(e)[:200]}") from None
        empty = next((i for i, s in enumerate(ids) if not s), None)
        if empty is not None:
            raise InputError(f"inputs[{empty}] gives no tokens; send some text")
        return pad_ids(ids, max(len(s) for s in ids)).numpy(), np.flatnonzero(cut).tolist()

    def check_range(self, x: np.ndarray) -> None:
        """Refuse raw inputs (B, *input_shape) more than ``MAX_STDS`` training standard deviations from the mean.

        Raises:
            InputError: naming the examples, the first value out of range and its allowed range.
        """
        meta = self.meta
        if self.signature.kind != "array" or meta.x_mean is None:
            return  # no training statistics to measure by; the outputs are still checked
        image = x.ndim == 4
        shape = (1, -1, 1, 1) if image else (1, -1)  # as normalize_inputs applies them
        mean = np.asarray(meta.x_mean, np.float64).reshape(shape)
        std = np.asarray(meta.x_std, np.float64).reshape(shape)
        far = np.abs(x.astype(np.float64) - mean) > MAX_STDS * std
        if not far.any():
            return
        first = tuple(np.argwhere(far)[0])
        k = first[1] if image else first[-1]
        names = meta.feature_names or []
        what = f"channel {k}" if image else f"feature {names[k]!r}" if k < len(names) else f"feature {k}"
        lo, hi = (meta.x_mean[k] + sign * MAX_STDS * meta.x_std[k] for sign in (-1, 1))
        rows = np.flatnonzero(far.reshape(len(x), -1).any(axis=1))
        which = ", ".join(str(i) for i in rows[:10]) + (", ..." if rows.size > 10 else "")
        raise InputError(f"example(s) {which} lie too far from the training data for the model to compute: "
                         f"{what} is {float(x[first]):.3g}; its allowed range is [{lo:.4g}, {hi:.4g}], the training "
                         f"mean ± {MAX_STDS:,.0f} standard deviations")

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Raw inputs (B, *input_shape) or token ids (B, L) -> (probabilities (B, C),) or (values (B,),).

        The run's normalisation is applied here, exactly as ``normalize_inputs`` does in evaluation.
        """
        if self.signature.kind == "array":
            x = normalize_inputs(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), self.meta).numpy()
        else:
            x = self.signature.native(x)
        out = self.runner(x).astype(np.float64)
        # Outputs overflowed by huge inputs become inf/NaN rows here, without warnings; the app refuses them.
        with np.errstate(over="ignore", invalid="ignore"):
            if self.classification:
                z = np.exp(out - out.max(axis=1, keepdims=True))  # softmax, shifted so exp cannot overflow
                return (z / z.sum(axis=1, keepdims=True),)
            return (out[:, 0] * self.meta.y_std + self.meta.y_mean,)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def load_served_model(target: str | Path, backend: str = "auto", checkpoint: str = "best",
                      threads: int | None = None):
    """Load what ``zerotune serve TARGET`` serves: a `ServedModel`, or a `ServedLM` for a language
    model (a language-model run, or a local Hugging Face causal-LM directory), served over OpenAI's API.

    Args:
        target: a run directory, an exported ``.onnx`` file or a TorchScript ``.pt`` file (each
            export with its ``.json`` sidecar).
        backend: "torch", "onnx", or "auto": PyTorch for runs and ``.pt`` files, onnxruntime for ``.onnx``.
            A run served with "onnx" is exported in memory and checked against PyTorch first.
        checkpoint: "best" or "last" (runs only).
        threads: CPU threads for onnxruntime (default: its own choice); PyTorch's count is the
            caller's to set, with ``compute.threads.torch_threads`` (as `serve` does).

    Raises:
        UserError: when the target is not a run or an export, or does not fit the backend.
    """
    if backend not in BACKENDS:
        raise UserError(f"backend {backend!r} is unknown; allowed: {', '.join(BACKENDS)}")
    threads = check_threads(threads)
    target = Path(target)
    if target.is_dir() and not RunDir(target).config.exists() and (target / "config.json").exists():
        return _hf_directory(target, backend)
    if target.is_dir():
        return _from_run(target, "torch" if backend == "auto" else backend, checkpoint, threads)
    if not target.is_file():
        raise UserError(f"{target} does not exist; give a run directory or an exported .onnx / .pt file")
    kind = {".onnx": "onnx", ".pt": "torch"}.get(target.suffix)
    if kind is None:
        raise UserError(f"{target} is neither a run directory nor an exported model (.onnx or .pt)")
    if backend not in ("auto", kind):
        raise UserError(f"{target.name} runs on the {kind} backend only; use --backend {kind} "
                        "or serve the run directory")
    from ..export.sidecar import load_export_tokenizer, read_sidecar

    data = target.read_bytes()
    side = read_sidecar(target, data)
    signature = signature_from_dict(side.get("input"), side["meta"])
    _servable(signature)
    tokenizer = max_length = None
    if signature.kind == "text":
        tokenizer = load_export_tokenizer(target, side)
        max_length = int((side["input"].get("tokenizer") or {}).get("max_length") or signature.max_length or 0)
    if kind == "onnx":
        runner = onnx_runner(data, threads, signature=signature)
    else:
        runner = graph_runner(load_torchscript(data), signature)
    source = {**side["source"], "file": str(target), "format": side["format"]}
    return ServedModel(side["source"].get("model", "unknown"), side["meta"], BACKEND_NAMES[kind], source,
                       side["sha256"][:12], runner, side.get("export"), signature, tokenizer, max_length)


def _servable(signature: Signature) -> None:
    if signature.kind == "lm":
        raise UserError("an exported language model has no KV cache to generate with; serve its run directory "
                        "instead (OpenAI-compatible API on PyTorch)")


def _lm_from_run(run, run_dir: Path, backend: str):
    """A language-model run (a GPT from zero, or an instruction-tuned GPT or transformers model), served over
    OpenAI's API (`serve.openai_app`), named after its directory."""
    from ..lm.textmodel import GPTTextModel, HFTextModel
    from .served_lm import ServedLM

    if backend != "torch":
        raise UserError("a language model is served on PyTorch only (its KV cache); use --backend torch or auto")
    name = Path(run_dir).resolve().name
    if run.meta.task in CHAT_TASKS:  # the tokenizer the run was tuned with: its chat format is the one served
        from ..runload.load import chat_format_for

        tokenizer = chat_format_for(run.config, run_dir)[0].tokenizer
    else:
        from ..data.lm_tokenizer import load_tokenizer_dir
        from ..run.files import RunDir

        tokenizer = load_tokenizer_dir(RunDir(run_dir).tokenizer)
    hf = getattr(run.model, "hf_model", None)  # a transformers model (hf_lm), LoRA adapters merged or not
    model = HFTextModel(hf, tokenizer, name) if hf is not None else GPTTextModel(run.model, tokenizer, name)
    version = _file_hash(run.weights_file) if run.weights_file.exists() else __version__
    return ServedLM(model, version, {"run": str(Path(run_dir).resolve()), "checkpoint": run.checkpoint,
                                     "format": "run checkpoint"})


def _hf_directory(target: Path, backend: str):
    """A local Hugging Face causal-LM directory (config.json, weights, tokenizer), served over OpenAI's API."""
    from ..lm.textmodel import HFTextModel
    from .served_lm import ServedLM

    if backend not in ("auto", "torch"):
        raise UserError("a language model is served on PyTorch only (its KV cache); use --backend torch or auto")
    return ServedLM(HFTextModel.from_directory(target), __version__, {"directory": str(target.resolve()),
                                                                      "format": "hugging face"})


def _from_run(run_dir: Path, backend: str, checkpoint: str, threads: int | None) -> ServedModel:
    from ..export.prepare import prepare_for_export
    from ..runload.load import load_run

    run = load_run(run_dir, checkpoint)
    if run.meta.task == "lm" or run.meta.task in CHAT_TASKS:
        return _lm_from_run(run, run_dir, backend)
    signature = signature_for(run.meta, run.model, run.config.data.max_length)
    _servable(signature)
    tokenizer = max_length = None
    if signature.kind == "text":
        from ..data.text import load_tokenizer
        from ..runload.load import model_dir

        tokenizer, max_length = load_tokenizer(model_dir(run.config, run_dir)), signature.max_length
    noise = signature.noise(64)  # seeded stand-in inputs: the server does not rebuild the run's data
    model = prepare_for_export(run.model, torch.from_numpy(noise[:2]))
    version = _file_hash(run.weights_file) if run.weights_file.exists() else __version__
    source = {"run": str(run_dir.resolve()), "checkpoint": run.checkpoint, "format": "run checkpoint"}
    export = None
    if backend == "torch":
        runner = torch_runner(model, signature)
    else:
        from ..export.onnx_export import DEFAULT_OPSET, to_onnx
        from ..export.parity import verify

        runner = onnx_runner(to_onnx(signature.wrap(model), signature.example(noise), DEFAULT_OPSET), threads,
                             signature=signature)
        inputs = "random normal" if signature.kind == "array" else "random token"
        parity = verify(torch_runner(model, signature), runner, noise, reference_name="pytorch fp32", inputs=inputs,
                        classification=run.meta.task == "classification", tolerance=1e-4)
        if not parity.ok:
            raise UserError(f"the in-memory ONNX export does not match PyTorch: {parity.summary()}")
        export = {"format": "onnx", "opset": DEFAULT_OPSET, "in_memory": True, "parity": parity.to_dict(),
                  "dynamic_axes": signature.dynamic_axes()}
    return ServedModel(run.config.model.name, run.meta, BACKEND_NAMES[backend], source, version, runner, export,
                       signature, tokenizer, max_length)
