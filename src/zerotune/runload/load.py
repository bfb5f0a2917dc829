"""Reading a run directory back: its config, data metadata, data and model, with nothing else needed.

A run whose model is a pretrained transformer keeps that model's config and tokenizer in
``hf/`` (weights stay in the checkpoints), so it rebuilds without the original model directory.
"""

from __future__ import annotations

import shutil

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, load_run_config
from ..data import build_data
from ..data.bundle import DataBundle, DataMeta, Split
from ..errors import UserError
from ..models import create_model
from ..train import checkpoint as ckpt
from ..run.checksums import WEIGHTS_FILES, check_files
from ..run.files import CHECKPOINT_NAMES, CHECKPOINTS_DIR, MODEL_FILE, RunDir, read_json


@dataclass
class LoadedRun:
    path: Path
    config: Config
    meta: DataMeta
    model: torch.nn.Module
    checkpoint: str  # the name of the checkpoint loaded: "best" or "last"
    checkpoint_dir: Path  # where its weights came from

    @property
    def weights_file(self) -> Path:
        return self.checkpoint_dir / MODEL_FILE


def read_run_config(run_dir: str | Path) -> Config:
    """A run's config.yaml, read and validated (every command that reads a run comes here).

    Raises:
        UserError: one line, when the directory is not a run or its config.yaml is unreadable or invalid.
    """
    return load_run_config(run_dir)


def read_meta(run_dir: str | Path) -> DataMeta:
    """A run's meta.json, read and validated.

    Raises:
        UserError: one line naming the file and what is wrong with it.
    """
    file = RunDir(run_dir).meta
    try:
        return DataMeta.from_dict(read_json(file))
    except ValueError as e:
        raise UserError(f"{file} is invalid: {e}") from None


def model_dir(config: Config, run_dir: str | Path | None = None) -> Path | None:
    """The transformers directory (config + tokenizer) behind an "hf" model: the run's own copy, else model.path."""
    if config.model.name not in ("hf", "hf_lm"):
        return None
    if run_dir is not None and RunDir(run_dir).hf.is_dir():
        return RunDir(run_dir).hf
    from ..models.hf import resolve_pretrained

    return resolve_pretrained(str(config.model.options.get("path", "")))


def build_model_for(config: Config, meta: DataMeta, run_dir: str | Path | None = None) -> torch.nn.Module:
    """Build the model a config describes, for data with this metadata.

    Args:
        config: the run's Config.
        meta: the data metadata (input shape, classes).
        run_dir: a run directory whose ``hf/`` copy to rebuild a transformer from; its weights then
            come from a checkpoint, not from the pretrained directory.
    """
    options = dict(config.model.options)
    if config.model.name in ("hf", "hf_lm") and run_dir is not None and RunDir(run_dir).hf.is_dir():
        options.update(path=str(RunDir(run_dir).hf), pretrained=False)
    return create_model(config.model.name, input_shape=tuple(meta.input_shape), num_outputs=meta.num_outputs,
                        init=config.model.init, **options)


def load_data(config: Config, run_dir: str | Path | None = None, stats: DataMeta | None = None) -> DataBundle:
    """A config's data splits, normalised with the statistics the model was trained with.

    Args:
        config: the run's Config.
        run_dir: the run, if it exists: text is tokenised with its ``hf/`` or ``tokenizer/`` tokenizer, and inputs
            are normalised with the statistics in its meta.json.
        stats: metadata whose normalisation to apply instead (a fine-tune uses its parent's).
    """
    if config.data.name in ("corpus", "text", "sft", "preference"):
        _refuse_in_memory_options(config.data)
    if config.data.name in ("sft", "preference"):
        return _sft_data(config, run_dir)
    if config.data.name == "corpus":
        from ..data.corpus import build_corpus_data
        from ..data.lm_tokenizer import load_tokenizer_dir

        saved = RunDir(run_dir).tokenizer if run_dir is not None else None
        tokenizer = load_tokenizer_dir(saved) if saved is not None and saved.is_dir() else None
        data, tokenizer = build_corpus_data(config.data, tokenizer)
        data.tokenizer = tokenizer
        return data
    if config.data.name == "text":
        from ..data.text import build_text_data, load_tokenizer

        directory = model_dir(config, run_dir)
        if directory is None:
            raise UserError("data set 'text' needs a pretrained transformers model (model.name = 'hf', or "
                            "finetune.source = a transformers directory) whose tokenizer reads it")
        return build_text_data(config.data, load_tokenizer(directory))
    data = build_data(config.data)
    if stats is None and run_dir is not None and RunDir(run_dir).meta.exists():
        stats = read_meta(run_dir)
    return renormalize(data, stats) if stats is not None else data


def _sft_data(config: Config, run_dir: str | Path | None) -> DataBundle:
    """Instruction or preference data tokenised for the model in its chat format (see `chat_format_for`)."""
    fmt, tokenizer, vocab, context = chat_format_for(config, run_dir)
    if config.data.name == "preference":
        from ..data.preference import build_preference_data

        data = build_preference_data(config.data, fmt, vocab, context)
    else:
        from ..config import SFTConfig
        from ..data.sft import build_sft_data

        data = build_sft_data(config.data, config.sft or SFTConfig(), fmt, vocab, context)
    data.tokenizer, data.chat = tokenizer, fmt
    return data


def chat_format_for(config: Config, run_dir: str | Path | None):
    """The chat format of a causal LM: a transformers model's own tokenizer (the run's hf/ copy or the model
    directory), or the tokenizer of the GPT run `run_dir` (the source run, or the run itself).

    Returns:
        (ChatFormat, the zerotune tokenizer to save with the run or None, vocabulary size, context or None).
    """
    from ..data.chat import ChatFormat

    if config.model.name == "hf_lm":
        from transformers import AutoConfig

        from ..data.text import load_tokenizer

        directory = model_dir(config, run_dir)
        vocab = AutoConfig.from_pretrained(str(directory), local_files_only=True).vocab_size
        return ChatFormat(load_tokenizer(directory)), None, vocab, None
    if config.model.name == "gpt" and run_dir is not None and RunDir(run_dir).tokenizer.is_dir():
        from ..data.lm_tokenizer import load_tokenizer_dir

        tokenizer = load_tokenizer_dir(RunDir(run_dir).tokenizer)
        context = int(read_meta(run_dir).input_shape[0])
        return ChatFormat(tokenizer), tokenizer, tokenizer.vocab_size, context
    raise UserError(f"data {config.data.name!r} tunes a causal language model: set finetune.source to a zerotune GPT run "
                    "or a local transformers causal language model directory")


def _refuse_in_memory_options(data) -> None:
    """Folds and class fractions are cut in data/build.py, which text and corpora do not go through."""
    for option in ("class_fraction", "cv_folds"):
        if getattr(data, option) is not None:
            raise UserError(f"data.{option} applies to in-memory data sets (images, tables), not {data.name!r}")


def renormalize(data: DataBundle, meta: DataMeta) -> DataBundle:
    """`data` normalised with `meta`'s input statistics instead of its own (same shape required)."""
    own = data.meta
    if meta.x_mean is None or own.x_mean is None or (own.x_mean, own.x_std) == (meta.x_mean, meta.x_std):
        return data
    if len(meta.x_mean) != len(own.x_mean):
        return data
    shape = (1, -1, 1, 1) if own.is_image else (1, -1)
    m0, s0 = (torch.tensor(v).reshape(shape) for v in (own.x_mean, own.x_std))
    m1, s1 = (torch.tensor(v).reshape(shape) for v in (meta.x_mean, meta.x_std))

    def redo(split: Split) -> Split:
        return Split(((split.x * s0 + m0) - m1) / s1, split.y)

    new_meta = DataMeta.from_dict({**own.to_dict(), "x_mean": list(meta.x_mean), "x_std": list(meta.x_std)})
    return DataBundle(redo(data.train), redo(data.val), redo(data.test), new_meta)


def save_model_files(run_dir: Path, config: Config, source_run: Path | None = None) -> None:
    """Copy a transformer's config and tokenizer into ``run_dir/hf`` so the run stands alone."""
    directory = model_dir(config, source_run)
    if directory is None:
        return
    from transformers import AutoConfig

    from ..data.text import load_tokenizer

    from ..models.pretrained import SOURCE_FILE

    target = RunDir(run_dir).hf
    AutoConfig.from_pretrained(str(directory), local_files_only=True).save_pretrained(str(target))
    load_tokenizer(directory).save_pretrained(str(target))
    if (directory / SOURCE_FILE).is_file():  # the weights came from a GGUF file: which one, how quantized
        shutil.copyfile(directory / SOURCE_FILE, target / SOURCE_FILE)


def _check_checkpoint_name(checkpoint: str) -> None:
    if checkpoint not in CHECKPOINT_NAMES:
        raise UserError(f"checkpoint {checkpoint!r} is unknown; allowed: {', '.join(CHECKPOINT_NAMES)}")


def find_run_checkpoint(run_dir: str | Path, checkpoint: str = "best") -> tuple[Path | None, str]:
    """A run's checkpoint directory by name, and the name found: "best" falls back to "last" when no
    evaluation improved. The path is None when the run has no such checkpoint yet.

    Raises:
        UserError: when `checkpoint` is neither "best" nor "last".
    """
    _check_checkpoint_name(checkpoint)
    run = RunDir(run_dir)
    found = ckpt.find_checkpoint(run.checkpoint(checkpoint))
    if found is None and checkpoint == "best":
        found, checkpoint = ckpt.find_checkpoint(run.checkpoint("last")), "last"
    return found, checkpoint


def load_run(run_dir: str | Path, checkpoint: str = "best", device="cpu") -> LoadedRun:
    """Rebuild a run's model from its directory and load the chosen checkpoint's weights.

    Args:
        run_dir: the run directory.
        checkpoint: "best" or "last" (best falls back to last when no evaluation improved).
        device: where to put the model.
    """
    _check_checkpoint_name(checkpoint)
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    meta = read_meta(run_dir)
    found, checkpoint = find_run_checkpoint(run_dir, checkpoint)
    if found is None:
        raise UserError(f"{run_dir} has no checkpoint yet ({CHECKPOINTS_DIR}/{checkpoint} is missing)")
    # The weights' checksum is computed while the model is built: crc32c releases the GIL, so on a spare
    # core the check costs no wall time (benchmarks/checksum_cost.py).
    with ThreadPoolExecutor(1, thread_name_prefix="zerotune-checksum") as pool:
        checked = pool.submit(check_files, found, WEIGHTS_FILES, [MODEL_FILE])
        model = build_model_for(config, meta, run_dir)
        if config.finetune is not None and config.finetune.source is not None:
            from ..models.lora import apply_lora, is_lora

            if is_lora(config):  # the same adapters as in training, so the checkpoint's names fit
                apply_lora(model, config.finetune)
        checked.result()
    ckpt.fit_weights(model, ckpt.read_weights(found, device, check=False), found / MODEL_FILE)
    model.to(device).eval()
    return LoadedRun(run_dir, config, meta, model, checkpoint, found)


def run_data(run: LoadedRun) -> DataBundle:
    """The data of a loaded run, rebuilt from its config as it was in training (tokenizer, normalisation).

    Raises:
        UserError: when the data its config.yaml describes is not the data its model was built for (meta.json):
            one of the two files was changed.
    """
    data = load_data(run.config, run.path)
    got, want = data.meta, run.meta
    tokens = want.task in ("lm", "sft", "preference") or want.source == "text"  # token ids: the length may differ, not the meaning
    if got.task != want.task or got.num_outputs != want.num_outputs or (
            not tokens and list(got.input_shape) != list(want.input_shape)):
        raise UserError(f"{RunDir(run.path).config} describes other data than the model was built for "
                        f"({RunDir(run.path).meta.name}: {want.task}, inputs {list(want.input_shape)}, "
                        f"{want.num_outputs} outputs; the config gives {got.task}, inputs {list(got.input_shape)}, "
                        f"{got.num_outputs} outputs): one of the two files was changed")
    if want.task == "preference" and RunDir(run.path).reference_logps.is_file():  # a full fine-tune's reference
        from ..data.preference_cache import load_reference, with_cached

        data = with_cached(data, load_reference(RunDir(run.path).reference_logps, data))
    return data
