"""The typed config schema: recipe files, dotted overrides and validation in one code path.

A recipe (TOML or YAML) and ``--set group.field=value`` overrides are merged into a plain dict and
validated by :class:`Config`; a Python caller builds the same objects directly, e.g.
``Config(optim=OptimConfig(lr=3e-4))``. Every validation error becomes one ``UserError`` line that
names the field and what is allowed.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from .errors import UserError, format_validation_error, require_file


def _not_a_bool(value):
    # TOML and YAML read `true` as a bool, which pydantic would take for the number 1
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


# The number types of every config field: as int and float, but true and false are refused.
Int = Annotated[int, BeforeValidator(_not_a_bool)]
Float = Annotated[float, BeforeValidator(_not_a_bool)]
# The seeds reach NumPy and scikit-learn, which take 0..2**32-1 (torch takes more); the seeds derived
# from them by adding an offset wrap around into that range (data/preprocess.py, distill/targets.py).
SEED_MAX = 2**32 - 1


class Section(BaseModel):
    """Base for every config group: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(Section):
    """Image augmentation applied to training batches (torch ops, seeded; see data/augment.py)."""

    flip: bool = Field(False, description="random horizontal flip (off for digits: it changes them)")
    rotate_degrees: Float = Field(0.0, ge=0, le=180, description="max random rotation in degrees")
    shift: Float = Field(0.0, ge=0, le=0.5, description="max random shift as a fraction of size")
    crop_padding: Int = Field(0, ge=0, description="pad by N pixels then crop back at random (CIFAR-10: 4)")
    noise_std: Float = Field(0.0, ge=0, description="std of additive Gaussian noise")
    scale: Float = Field(0.0, ge=0, le=0.5, description="max random zoom: each image scaled by a factor in [1-scale, 1+scale]")
    brightness: Float = Field(0.0, ge=0, le=1, description="max brightness jitter: pixel values times a factor in [1-b, 1+b]")
    contrast: Float = Field(0.0, ge=0, le=1, description="max contrast jitter: distance from the image mean times a factor in [1-c, 1+c]")
    mixup_alpha: Float = Field(0.0, ge=0, le=10, description="mixup: blend pairs of examples and their labels by Beta(alpha, alpha) (0: off; 0.2 typical)")
    cutmix_alpha: Float = Field(0.0, ge=0, le=10, description="cutmix: paste a box of another image, labels mixed by its area, Beta(alpha, alpha) (0: off; 1 typical)")
    mix_prob: Float = Field(1.0, ge=0, le=1, description="mixup/cutmix: fraction of training batches that are mixed")
    switch_prob: Float = Field(0.5, ge=0, le=1, description="mixup and cutmix both on: chance that a mixed batch uses cutmix")

    @property
    def enabled(self) -> bool:
        """Whether any per-image augmentation is switched on (mixup and cutmix: `mixing`)."""
        return bool(self.flip or self.rotate_degrees or self.shift or self.crop_padding or self.noise_std
                    or self.scale or self.brightness or self.contrast)

    @property
    def mixing(self) -> bool:
        """Whether mixup or cutmix is switched on."""
        return bool(self.mixup_alpha or self.cutmix_alpha)


class DataConfig(Section):
    """Where the data comes from and how it is split and preprocessed."""

    name: str = Field("digits", description="built-in data set or file format (see `zerotune datasets`)")
    path: str | list[str] | None = Field(
        None, description="file or directory for file-based data sets; text, csv and corpus also take a list of files")
    target: str | None = Field(None, description="CSV: target column (default: last column)")
    task: Literal["auto", "classification", "regression"] = Field("auto", description="CSV task")
    val_fraction: Float = Field(0.1, ge=0, lt=1, description="fraction of data held out for validation")
    test_fraction: Float = Field(0.2, ge=0, lt=1, description="fraction held out for test (if no official test split)")
    split_seed: Int = Field(0, ge=0, le=SEED_MAX, description="seed of the train/val/test split")
    normalize: Literal["standard", "none"] = Field("standard", description="standardise inputs with train statistics")
    normalize_target: bool = Field(True, description="regression: standardise the target while training")
    image_size: Int | None = Field(None, ge=4, description="image folders: resize to this square size")
    grayscale: bool = Field(False, description="image folders: load as one channel")
    download: bool = Field(False, description="mnist/fashion_mnist/cifar10: download into path if missing")
    n_samples: Int = Field(2000, ge=10, description="synthetic: number of samples")
    n_features: Int = Field(20, ge=1, description="synthetic: number of features")
    n_classes: Int = Field(3, ge=2, description="synthetic classification: number of classes")
    noise: Float = Field(0.1, ge=0, description="synthetic: noise level")
    classes: list[Int] | None = Field(None, description="keep only these class indices (relabelled 0..k-1)")
    train_per_class: Int | None = Field(None, ge=1, description="keep at most N training examples per class")
    class_fraction: dict[int, Float] | None = Field(
        None, description="keep this fraction of a class's training examples, e.g. {3 = 0.05} (an imbalanced set)")
    cv_folds: Int | None = Field(None, ge=2, description="cross-validation: folds over train+val (set by `zerotune cv`)")
    cv_fold: Int | None = Field(None, ge=0, description="cross-validation: which fold is the validation split (0-based; default 0)")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    text_field: str = Field("text", description="text: column or JSON key of the text (headerless files: first column)")
    label_field: str = Field("label", description="text: column or JSON key of the label (headerless files: last column)")
    test_path: str | list[str] | None = Field(
        None, description="text: a file (or list of files) used whole as the test split (e.g. another domain)")
    max_length: Int = Field(128, ge=2, le=8192, description="text, sft, preference: truncate to this many tokens")
    tokenizer: Literal["char", "bpe"] = Field("char", description="corpus: character-level, or byte-level BPE trained on the corpus")
    vocab_size: Int = Field(1024, ge=260, le=65536, description="corpus: BPE vocabulary size (256 bytes + merges)")
    chat_chars: bool = Field(
        False, description="corpus, char: the vocabulary also holds the default chat template's characters "
                           "(System:, User:, Assistant:), so the GPT can be instruction-tuned")
    block_size: Int = Field(128, ge=2, le=8192, description="corpus: tokens of context per training window")
    windows_per_epoch: Int | None = Field(
        None, ge=1, description="corpus: random windows per epoch (default: training tokens // block_size)")
    eval_windows: Int = Field(240, ge=1, description="corpus: fixed validation windows in each loss estimate")
    cache_dir: str | None = Field(
        None, description="corpus: where token arrays are memory-mapped (default: $XDG_CACHE_HOME/zerotune/tokens)")

    @field_validator("path", "test_path", "cache_dir")
    @classmethod
    def _absolute_paths(cls, value):
        # A recipe's paths arrive already made absolute against the recipe's folder (load_config);
        # what is left relative came from the command line or Python and is relative to the
        # current directory. Stored absolute, a run directory works from any working directory.
        if isinstance(value, list):
            if not value:
                raise ValueError("needs at least one path")
            paths = [absolute_path(v, Path.cwd()) for v in value]
            return paths if len(paths) > 1 else paths[0]
        return None if value is None else absolute_path(value, Path.cwd())

    @model_validator(mode="after")
    def _chat_chars_for_char_vocabulary(self):
        if self.chat_chars and self.tokenizer != "char":
            raise ValueError("chat_chars applies to a character vocabulary (data.tokenizer = 'char'); "
                             "a BPE vocabulary spells every text")
        return self

    @model_validator(mode="after")
    def _test_path_is_read(self):
        if self.test_path is not None and self.name != "text":
            raise ValueError(f"test_path (--test) applies to data.name 'text', not {self.name!r}")
        return self

    @field_validator("class_fraction")
    @classmethod
    def _fractions_of_classes(cls, value):
        bad = {k: v for k, v in (value or {}).items() if not 0 < v <= 1}
        if bad:
            raise ValueError(f"each fraction must be in (0, 1], got {bad}")
        return value

    @model_validator(mode="after")
    def _fold_in_range(self):
        if self.cv_fold is not None and (self.cv_folds is None or self.cv_fold >= self.cv_folds):
            allowed = f"0..{self.cv_folds - 1}" if self.cv_folds else "a fold of data.cv_folds, which is not set"
            raise ValueError(f"cv_fold must be {allowed}, got {self.cv_fold}")
        return self

    @model_validator(mode="after")
    def _fractions_leave_training_data(self):
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction must be below 0.9, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        return self


# The data sets that read each data option; an option not listed applies to every data set. A run's
# hyperparameters (TensorBoard, `zerotune report`, `zerotune runs`) leave out those its data set ignores.
_IMAGES = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder")
_SYNTHETIC = ("synthetic_classification", "synthetic_regression")
_TABLES = ("iris", "wine", "breast_cancer", "diabetes", "csv", *_SYNTHETIC)
_CORPUS = ("corpus",)
DATA_OPTION_SETS: dict[str, tuple[str, ...]] = {
    "target": ("csv",), "task": ("csv",), "normalize": _IMAGES + _TABLES, "normalize_target": _TABLES,
    "image_size": ("image_folder",), "grayscale": ("image_folder",), "download": ("mnist", "fashion_mnist", "cifar10"),
    "n_samples": _SYNTHETIC, "n_features": _SYNTHETIC, "n_classes": ("synthetic_classification",),
    "noise": _SYNTHETIC, "augment": _IMAGES, "text_field": ("text",), "label_field": ("text",),
    "max_length": ("text", "sft", "preference"), "tokenizer": _CORPUS, "vocab_size": _CORPUS, "block_size": _CORPUS,
    "windows_per_epoch": _CORPUS, "eval_windows": _CORPUS, "cache_dir": _CORPUS,
    "class_fraction": _IMAGES + _TABLES, "cv_folds": _IMAGES + _TABLES, "cv_fold": _IMAGES + _TABLES,
    "augment.mixup_alpha": _IMAGES + _TABLES, "augment.mix_prob": _IMAGES + _TABLES,  # mixup also mixes table rows
}
_KNOWN_DATA = {name for names in DATA_OPTION_SETS.values() for name in names} | {"text", "sft", "preference"}


def data_option_applies(option: str, data_name: str) -> bool:
    """Whether ``data.<option>`` (e.g. ``augment.flip``) means anything for the data set ``data_name``.

    A data set this table does not know (a newer source) keeps every option.
    """
    sets = DATA_OPTION_SETS.get(option, DATA_OPTION_SETS.get(option.split(".")[0]))
    return sets is None or data_name not in _KNOWN_DATA or data_name in sets


class ModelConfig(Section):
    """The model: a registry name plus that model's own options (checked against its schema)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str = Field("cnn", description="registered model name (see `zerotune models`)")
    init: Literal["default", "normal", "xavier", "he"] = Field("default", description="weight initialisation")

    @property
    def options(self) -> dict[str, Any]:
        """The model-specific options (everything except name and init)."""
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _options_fit_model(self, info: ValidationInfo):
        if info.context is not None and not info.context.get("model_options", True):
            return self  # a reader that builds no model (the doctor) skips the registry and its torch import
        from .models.registry import validate_model_options  # here: the models import torch

        validate_model_options(self.name, self.options)
        return self


Beta = Annotated[Float, Field(ge=0, lt=1)]  # as torch's Adam checks them, but when the config loads


class OptimConfig(Section):
    """Optimizer, regularisation and gradient clipping."""

    name: Literal["sgd", "adam", "adamw", "rmsprop"] = Field("adam", description="optimizer")
    lr: Float = Field(1e-3, gt=0, le=10, description="base learning rate")
    momentum: Float = Field(0.9, ge=0, lt=1, description="sgd/rmsprop momentum")
    nesterov: bool = Field(False, description="sgd: Nesterov momentum")
    betas: tuple[Beta, Beta] = Field((0.9, 0.999), description="adam/adamw betas, each in [0, 1)")
    eps: Float = Field(1e-8, gt=0, description="adam/adamw/rmsprop epsilon")
    weight_decay: Float = Field(0.0, ge=0, description="L2 decay in the optimizer (decoupled for adamw)")
    l1: Float = Field(0.0, ge=0, description="L1 penalty added to the loss")
    l2: Float = Field(0.0, ge=0, description="L2 penalty added to the loss")
    clip_norm: Float | None = Field(None, gt=0, description="clip the global gradient norm to this")
    clip_value: Float | None = Field(None, gt=0, description="clip each gradient element to ±this")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self):
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs optim.name='sgd' and momentum > 0")
        return self


class ScheduleConfig(Section):
    """Learning-rate schedule, applied every optimizer step, with optional linear warmup."""

    name: Literal["constant", "step", "exponential", "cosine", "onecycle", "plateau"] = Field("constant", description="schedule")
    warmup_steps: Int = Field(0, ge=0, description="linear warmup from 0 over this many steps")
    step_epochs: Float = Field(10, gt=0, description="step: multiply by gamma every N epochs")
    gamma: Float = Field(0.1, gt=0, le=1, description="step: factor per step_epochs; exponential: factor per epoch")
    min_lr_ratio: Float = Field(0.0, ge=0, le=1, description="cosine: final lr; plateau: lowest lr; as a fraction of lr")
    pct_start: Float = Field(0.3, gt=0, lt=1, description="onecycle: fraction of steps spent rising")
    div_factor: Float = Field(25.0, ge=1, description="onecycle: initial lr = lr / div_factor")
    final_div_factor: Float = Field(1e4, ge=1, description="onecycle: final lr = initial lr / final_div_factor")
    patience: Int = Field(3, ge=0, description="plateau: evaluations without improvement of train.monitor before lowering lr")
    factor: Float = Field(0.1, gt=0, lt=1, description="plateau: multiply lr by this at each reduction")
    threshold: Float = Field(1e-4, ge=0, lt=1, description="plateau: relative change of the monitor that counts as improvement")


class EarlyStoppingConfig(Section):
    """Stop when the monitored metric has not improved for `patience` evaluations."""

    patience: Int = Field(5, ge=1, description="evaluations without improvement before stopping")
    min_delta: Float = Field(0.0, ge=0, description="smallest change that counts as improvement")


class DistributedConfig(Section):
    """Training in several processes (``--nproc N`` or torchrun); ignored in a single process."""

    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="collectives backend (auto: nccl on CUDA, gloo on CPU)")
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description="ddp: a full copy of the model per rank; fsdp: weights, gradients and optimizer state sharded across ranks")


class TrainConfig(Section):
    """The training loop."""

    epochs: Int = Field(20, ge=1, le=100000, description="passes over the training split")
    max_steps: Int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    batch_size: Int = Field(64, ge=1, description="examples per micro-batch, over all ranks together when distributed")
    accumulate: Int = Field(1, ge=1, description="micro-batches per optimizer step")
    loss: Literal["auto", "mse", "cross_entropy", "bce", "hinge"] = Field("auto", description="loss (auto: by task)")
    label_smoothing: Float = Field(0.0, ge=0, lt=1, description="cross-entropy label smoothing")
    class_weights: Literal["balanced"] | list[Annotated[Float, Field(gt=0)]] | None = Field(
        None, description="classification: loss weight per class, 'balanced' (n / (classes x count)) or one per class")
    sampler: Literal["shuffle", "balanced"] = Field(
        "shuffle", description="epoch order: a shuffle, or 'balanced' (drawn with replacement, each class equally often)")
    precision: Literal["auto", "32", "bf16", "fp16"] = Field(
        "auto", description="autocast precision (auto: bf16 where the device runs it natively, else 32; fp16 needs CUDA)")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")
    seed: Int = Field(0, ge=0, le=SEED_MAX, description="seed for weights, shuffling, dropout and augmentation")
    deterministic: bool = Field(False, description="deterministic kernels (bitwise reproducible resume)")
    threads: Int | None = Field(None, ge=1, description="CPU threads for torch (default: torch's choice)")
    compile: bool = Field(False, description="torch.compile the model for training steps (compiling takes tens of seconds)")
    grad_checkpointing: bool = Field(
        False, description="recompute each transformer block's activations in the backward pass (less memory, more compute)")
    monitor: str = Field("auto", description="metric for best checkpoint and early stopping, e.g. val/accuracy")
    monitor_mode: Literal["auto", "min", "max"] = Field("auto", description="whether the monitor should rise or fall")
    early_stopping: EarlyStoppingConfig | None = Field(None, description="early stopping (off when absent)")
    eval_every: Int = Field(1, ge=1, description="evaluate on val every N epochs")
    checkpoint_every_steps: Int | None = Field(None, ge=1, description="also save `last` every N steps")
    checkpoint_every_seconds: Float = Field(
        10.0, ge=0, description="save `last` at an epoch end once N seconds passed since the previous save (0: every epoch)")
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_32_as_a_number(cls, value):
        # `--set train.precision=32` and TOML's `precision = 32` give the integer 32
        return "32" if value == 32 and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _fp16_is_gpu_only(self):
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("precision 'fp16' needs a CUDA device; use 'bf16' or '32' on cpu")
        return self


class LogConfig(Section):
    """Where the run goes and what is written to TensorBoard."""

    dir: str = Field("runs", description="parent directory of run directories")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$",
                             description="run name (default: <data>-<model>-<time>, <data>-<model>-finetune-<time> for a "
                                         "fine-tune, with -2, -3, ... added when that name is taken)")
    tensorboard: bool = Field(True, description="write TensorBoard events")
    scalars_every: Int = Field(1, ge=1, description="write train scalars every N steps")
    grad_norm_every: Int = Field(10, ge=1, description="measure the global gradient norm every N steps")
    progress: bool = Field(True, description="show a progress bar (outside a terminal: one line per evaluation)")
    layer_stats_every: Int = Field(10, ge=0, description="per-layer grad/weight norms and update ratio every N steps (0: off)")
    histograms_every: Int = Field(100, ge=0, description="weight and gradient histograms every N steps (0: off)")
    activations: bool = Field(False, description="with histograms, also each layer's activations on a fixed val batch")
    images: bool = Field(True, description="grids of input samples (and augmented samples) at the start")
    worst_every: Int = Field(1, ge=0, description="worst-misclassified val images every N evaluations (0: off)")
    figures_every: Int = Field(1, ge=0, description="confusion matrix or scatter, and ROC, every N evaluations (0: off)")
    pr_curves_every: Int = Field(1, ge=0, description="per-class PR curves every N evaluations (0: off)")
    predictions_every: Int = Field(1, ge=0, description="text table of sample predictions every N evaluations (0: off)")
    views_min_seconds: Float = Field(
        10.0, ge=0, description="draw evaluation figures and images at most every N seconds; the last evaluation always gets them (0: every due evaluation)")
    embeddings: bool = Field(True, description="projector embedding of penultimate features at the end of training")
    embedding_samples: Int = Field(256, ge=1, le=10000, description="val examples in the projector embedding")
    graph: bool = Field(True, description="model graph, traced once at the start")
    sample_tokens: Int = Field(200, ge=0, le=10000, description="language models: tokens generated as a text sample at each evaluation (0: off)")
    sample_prompt: str | None = Field(None, description="language models: prompt of the samples and attention maps (default: the start of the validation text)")
    attention_maps: bool = Field(True, description="language models: attention maps of the sample prompt as images at each evaluation")
    flush_secs: Float = Field(2.0, gt=0, le=600, description="seconds between flushes of the event file to disk")


class FinetuneConfig(Section):
    """Continue from a run or a pretrained model; which parameters train, when, and at what rate."""

    source: str | None = Field(None, description="run directory, pretrained transformers directory or alias (minilm-l6)")
    checkpoint: Literal["best", "last"] = Field("best", description="checkpoint of a source run")
    new_head: Literal["auto", "always", "never"] = Field("auto", description="new head (auto: when the classes differ)")
    strategy: Literal["full", "head", "partial", "gradual", "lora"] = Field("full", description="what trains")
    train_blocks: Int | None = Field(None, ge=0, description="partial: train the head and the last N blocks")
    freeze_layers: list[Int] = Field(default_factory=list, description="partial: block indices to freeze (negative from the end)")
    freeze_patterns: list[str] = Field(default_factory=list, description="partial/lora: freeze parameters whose name matches (glob)")
    unfreeze_every: Int = Field(1, ge=1, description="gradual: epochs between unfreezing one more block")
    unfreeze_start: Int = Field(0, ge=0, description="gradual: blocks trainable besides the head in the first epoch")
    lr_decay: Float = Field(1.0, gt=0, le=1, description="layer-wise lr: each block below the head gets lr x decay^depth")
    lora_rank: Int = Field(8, ge=1, le=1024, description="lora: rank of the update")
    lora_alpha: Float = Field(16.0, gt=0, description="lora: scale alpha (the update is multiplied by alpha/rank)")
    lora_dropout: Float = Field(0.0, ge=0, lt=1, description="lora: dropout on the adapter input")
    lora_targets: list[str] | None = Field(None, description="lora: module names or globs (default: query/value of an encoder, attention and MLP projections of a causal LM, every Linear/Conv of our models)")
    merged: bool = Field(False, description="lora: the adapters are merged into the weights (set by --merge-lora)")
    baseline: bool = Field(True, description="measure the source model on the target task before training (and a linear probe)")

    @model_validator(mode="after")
    def _options_fit_strategy(self):
        if self.train_blocks is not None and self.freeze_layers:
            raise ValueError("give finetune.train_blocks or finetune.freeze_layers, not both")
        if self.strategy != "partial" and (self.train_blocks is not None or self.freeze_layers):
            raise ValueError(f"train_blocks and freeze_layers apply to strategy 'partial', not {self.strategy!r}")
        return self


class DistillConfig(Section):
    """Knowledge distillation (Hinton et al. 2015): a teacher run's soft targets mixed with the hard labels."""

    teacher: str | None = Field(None, description="the teacher: a zerotune run directory (`--teacher` of `zerotune distill`)")
    checkpoint: Literal["best", "last"] = Field("best", description="checkpoint of the teacher run")
    temperature: Float = Field(4.0, gt=0, le=100, description="T: both softmaxes are taken of logits / T")
    alpha: Float = Field(0.9, ge=0, le=1, description="weight of the soft term (T^2 x KL); 1 - alpha weighs the hard loss")

    @field_validator("teacher")
    @classmethod
    def _absolute_teacher(cls, value):
        # Kept absolute so the run directory finds its teacher from any working directory (on resume).
        return None if value is None else absolute_path(value, Path.cwd())


def _compiled_regex(value: str | None) -> str | None:
    """`value` when it is None or a regular expression that compiles."""
    import re

    if value is not None:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"is not a valid regular expression: {e}") from None
    return value


class SFTConfig(Section):
    """Instruction tuning of a causal language model (data.name = 'sft'; see docs/llm-finetune.md)."""

    mask_prompt: bool = Field(True, description="loss on response tokens only (false: on the prompt tokens too)")
    answer_regex: str | None = Field(
        None, description="exact match compares the regex's first group (or whole match) in answer and reference")
    eval_prompts: Int = Field(64, ge=0, le=10000, description="held-out val prompts answered at each evaluation for exact match (0: off)")
    max_new_tokens: Int = Field(32, ge=1, le=4096, description="tokens generated at most per answer (greedy)")
    board_prompts: Int = Field(8, ge=0, le=100, description="held-out prompts in TensorBoard's base-vs-current answer table")
    packing: bool = Field(False, description="train on a step's examples packed into rows without padding, logits only on "
                          "answer tokens (transformers causal LMs, one process; see docs/llm-finetune.md)")

    @field_validator("answer_regex")
    @classmethod
    def _regex_compiles(cls, value):
        return _compiled_regex(value)


class PreferenceConfig(Section):
    """Preference tuning (DPO, Rafailov et al. 2023; IPO, Azar et al. 2023) of a causal language model
    (data.name = 'preference'; see docs/preference.md)."""

    loss: Literal["dpo", "ipo"] = Field("dpo", description="dpo: -log sigmoid(beta x margin); ipo: (margin - 1/(2 beta))^2")
    beta: Float = Field(0.1, gt=0, le=100, description="how far the policy may move from the reference (larger: less)")
    label_smoothing: Float = Field(0.0, ge=0, lt=0.5, description="dpo: the share of pairs taken to be mislabelled (conservative DPO)")
    sft_weight: Float = Field(0.0, ge=0, le=100, description="weight of the chosen answers' mean token loss added to the "
                                                            "preference loss (RPO; TRL's loss_type 'sft'); 0: off")
    eval_prompts: Int = Field(
        0, ge=0, le=10000, description="held-out val prompts answered greedily at each evaluation for answers/chosen "
                                       "and answers/preferred (0: off; eval then answers every prompt of its split)")
    answer_regex: str | None = Field(
        None, description="an answer follows the preferred behaviour when this regex matches all of it (answers/preferred)")
    max_new_tokens: Int = Field(32, ge=1, le=4096, description="tokens generated at most per answer (greedy)")
    board_prompts: Int = Field(4, ge=0, le=100, description="held-out prompts in TensorBoard's base-vs-current answer table")

    @field_validator("answer_regex")
    @classmethod
    def _regex_compiles(cls, value):
        return _compiled_regex(value)

    @model_validator(mode="after")
    def _smoothing_is_dpo(self):
        if self.label_smoothing and self.loss != "dpo":
            raise ValueError(f"label_smoothing applies to loss 'dpo', not {self.loss!r}")
        return self


class Config(Section):
    """A whole run's configuration."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    finetune: FinetuneConfig | None = Field(None, description="fine-tuning (off when absent or without a source)")
    distill: DistillConfig | None = Field(None, description="knowledge distillation (off when absent or without a teacher)")
    sft: SFTConfig | None = Field(None, description="instruction tuning options (data.name = 'sft'; defaults when absent)")
    preference: PreferenceConfig | None = Field(
        None, description="preference tuning options (data.name = 'preference'; defaults when absent)")

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML-safe dict of every resolved value."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Loading, overriding, validating


def build_config(raw: dict[str, Any], *, model_options: bool = True) -> Config:
    """Validate a plain dict into a Config, raising UserError with a one-line message.

    Args:
        raw: the groups, as a recipe or config.yaml holds them.
        model_options: False leaves the model's own options unchecked, which needs the model registry
            (and torch): for readers that build no model.
    """
    try:
        return Config.model_validate(raw, context={"model_options": model_options})
    except ValidationError as e:
        raise UserError(f"config: {format_validation_error(e, schema=Config)}") from None
    except UserError as e:
        raise UserError(f"config: {e}") from None


def load_run_config(run_dir: str | Path, *, model_options: bool = True) -> Config:
    """A run directory's config.yaml, read and validated: the one way every command reads a run's config.

    Args:
        run_dir: the run directory.
        model_options: as in `build_config`.

    Raises:
        UserError: one line, when the directory is not a run or its config.yaml is unreadable or invalid.
    """
    from .run.files import RunDir, read_run_config_dict

    raw = read_run_config_dict(run_dir)
    try:
        return build_config(raw, model_options=model_options)
    except UserError as e:
        raise UserError(f"{RunDir(run_dir).config} is invalid: {str(e).removeprefix('config: ')}") from None


def read_recipe(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML recipe into a plain dict (not yet validated)."""
    path = Path(path)
    require_file(path, "recipe")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"recipe {path} is not a UTF-8 text file (byte {e.start}: {e.reason}); "
                        f"a recipe is TOML or YAML text") from None
    except OSError as e:
        raise UserError(f"recipe {path} cannot be read: {e.strerror or e}") from None
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text) or {}
        else:
            raise UserError(f"recipe {path}: unknown format {path.suffix!r}; allowed: .toml, .yaml, .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0]
        raise UserError(f"recipe {path} is not valid {path.suffix[1:].upper()}: {first}") from None
    if not isinstance(raw, dict):
        raise UserError(f"recipe {path} must hold a table of groups (data, model, ...)")
    return raw


# Fields that name files: relative values in a recipe are relative to the recipe's folder.
PATH_FIELDS = (("data", "path"), ("data", "test_path"), ("data", "cache_dir"), ("distill", "teacher"))
# Fields that name a directory or an alias (minilm-l6): made absolute only when the path exists there.
PATH_OR_NAME_FIELDS = (("finetune", "source"), ("model", "path"))


def absolute_path(value: str, base: str | Path) -> str:
    """`value` (``~`` expanded) made absolute against `base` and normalised; symlinks are kept."""
    if not value:
        raise ValueError("must not be empty")
    return os.path.normpath(os.path.join(os.path.abspath(base), os.path.expanduser(value)))


def resolve_recipe_paths(raw: dict[str, Any], recipe_dir: str | Path) -> dict[str, Any]:
    """A copy of a recipe's dict with its relative paths made absolute against the recipe's folder."""
    out = copy.deepcopy(raw)
    for group, field in PATH_FIELDS + PATH_OR_NAME_FIELDS:
        section = out.get(group)
        value = section.get(field) if isinstance(section, dict) else None
        if not value:
            continue  # absent, or empty: validation says what is wrong
        if (group, field) in PATH_FIELDS:
            if isinstance(value, str):
                section[field] = absolute_path(value, recipe_dir)
            elif isinstance(value, list):
                section[field] = [absolute_path(v, recipe_dir) if isinstance(v, str) and v else v for v in value]
        elif isinstance(value, str) and os.path.exists(path := absolute_path(value, recipe_dir)):
            section[field] = path
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``optim.lr=3e-4`` into (["optim", "lr"], 0.0003); values are parsed as YAML scalars."""
    if "=" not in text:
        raise UserError(f"override {text!r} must look like group.field=value, e.g. optim.lr=3e-4")
    key, value = text.split("=", 1)
    keys = key.strip().split(".")
    if len(keys) < 2 or not all(keys):
        raise UserError(f"override {text!r} must name a group and a field, e.g. optim.lr=3e-4")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return keys, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted override applied."""
    out = copy.deepcopy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            elif not isinstance(child, dict):
                raise UserError(f"override {text!r}: {k} is a value, not a group")
            node = child
        node[keys[-1]] = value
    return out


def load_config(recipe: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a recipe (or the defaults), apply overrides and validate.

    Paths in the recipe are relative to the recipe's folder, paths in overrides to the current
    directory; the Config holds them absolute.

    Args:
        recipe: path to a TOML or YAML recipe; None for the built-in defaults.
        overrides: strings like ``optim.lr=3e-4``.

    Returns:
        The validated Config.
    """
    raw = resolve_recipe_paths(read_recipe(recipe), Path(recipe).parent) if recipe is not None else {}
    return build_config(apply_overrides(raw, overrides or []))


# Groups that one field switches on, with the command that sets it. A recipe may hold such a group for the
# runs that use it (one recipe trains from scratch and fine-tunes); given with --set, its options without
# that field would be ignored without a word.
_SWITCHED = {"finetune": ("source", "a fine-tune", "zerotune finetune RECIPE --from RUN"),
             "distill": ("teacher", "a distillation", "zerotune distill RECIPE --teacher RUN")}


def check_switched_groups(config: Config, overrides: list[str]) -> None:
    """For `zerotune train`: refuse ``--set finetune.*`` or ``distill.*`` without the source or teacher that
    switches the group on (``finetune`` and ``distill`` give those with --from and --teacher)."""
    for text in overrides:
        keys, _ = parse_override(text)
        if keys[0] not in _SWITCHED:
            continue
        switch, what, command = _SWITCHED[keys[0]]
        section = getattr(config, keys[0])
        if keys[1] != switch and (section is None or getattr(section, switch) is None):
            raise UserError(f"{'.'.join(keys)} applies to {what}, but {keys[0]}.{switch} is not set: "
                            f"use `{command}` (or set {keys[0]}.{switch})")
