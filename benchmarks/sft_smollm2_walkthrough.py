"""The walkthrough of docs/llm-finetune.md on the real model, command by command, timed: install, data,
LoRA tuning with `recipes/sft_smollm2.toml`, evaluation, serving one chat answer, GGUF and HF export.

    python benchmarks/sft_smollm2_walkthrough.py                 # the recipe as shipped (tens of minutes)
    python benchmarks/sft_smollm2_walkthrough.py --quick         # 2 steps on 100 records: checks the commands

Each step is the documented command in a child process (`python -m zerotune ...`), run in a scratch
directory (`--work`, kept for a look afterwards). It prints, per step, the wall time and the CPU time
of the child (user + system), and at the end the base model's and the tuned model's exact match on
the held-out splits, from the run's metrics.json and `eval --json`. The figures of docs/benchmarks.md
("Instruction tuning: the SmolLM2 recipe end to end") come from these commands.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
QUICK = ["train.max_steps=2", "sft.eval_prompts=4", "finetune.baseline=false"]
# After 2 steps the model still answers in sentences, where float16 rounding can flip a near tie (19/20 seen);
# the export's check would rightly refuse that file, so --quick lets one answer in ten differ.
QUICK_EXPORT = ["--min-agreement", "0.9"]
QUESTION = ("When was the order in this message placed? Answer with the date as YYYY-MM-DD.\n\nHello, this is Mia. "
            "The box arrived damaged. I ordered a desk lamp on March 3, 2031.")


def cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(rows: list, name: str, command: list[str], work: Path) -> str:
    """Run `command` in `work`; add (name, wall s, CPU s) to `rows`; its stdout."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"{name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    rows.append((name, time.perf_counter() - wall, cpu_seconds() - cpu))
    return done.stdout


def zerotune(*args: str) -> list[str]:
    return [sys.executable, "-m", "zerotune", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat_answer(run: Path, work: Path) -> tuple[str, float]:
    """(the served run's answer to QUESTION, seconds from start until /health answers)."""
    port = free_port()
    server = subprocess.Popen(zerotune("serve", str(run), "--port", str(port)), cwd=work, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    start, url = time.perf_counter(), f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - start > 600:
                    sys.exit("the server did not start")
                time.sleep(0.5)
        ready = time.perf_counter() - start
        body = json.dumps({"model": run.name, "temperature": 0, "messages": [{"role": "user", "content": QUESTION}]})
        request = urllib.request.Request(f"{url}/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.load(response)["choices"][0]["message"]["content"], ready
    finally:
        server.terminate()
        server.wait(60)


def walkthrough(work: Path, quick: bool) -> None:
    rows: list = []
    data = work / "data"
    timed(rows, "models install", zerotune("models", "install", MODEL), work)
    records = ["--records", "100"] if quick else []
    timed(rows, "make data", [sys.executable, str(ROOT / "scripts" / "make_sft_smollm2_data.py"), "--out", str(data),
                              *records], work)
    sets = [a for s in [f"data.path={data / 'orders.jsonl'}", *(QUICK if quick else [])] for a in ("--set", s)]
    timed(rows, "finetune", zerotune("finetune", str(ROOT / "recipes" / "sft_smollm2.toml"), "--runs-dir",
                                     str(work / "runs"), "--no-progress", *sets), work)
    run = work / "runs" / "sft-smollm2"
    scores = json.loads(timed(rows, "eval --json", zerotune("eval", str(run), "--json"), work))
    answer, ready = chat_answer(run, work)
    rows.append(("serve until /health", ready, None))  # the server's CPU is not the command's own
    check = QUICK_EXPORT if quick else []
    timed(rows, "export gguf f16", zerotune("export", str(run), "--format", "gguf", *check), work)
    timed(rows, "export gguf q8_0", zerotune("export", str(run), "--format", "gguf", "--quant", "q8_0", *check), work)
    timed(rows, "export hf", zerotune("export", str(run), "--format", "hf"), work)
    report(rows, run, scores, answer)


def report(rows: list, run: Path, scores: dict, answer: str) -> None:
    before = json.loads((run / "metrics.json").read_text())["finetune"].get("before") or {}  # none without a baseline
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; peak RSS of a child: "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20:.1f} GiB")
    print("| step | wall s | CPU s |\n|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.1f} | {'' if cpu is None else f'{cpu:.1f}'} |")
    base = {k: before.get(f"{k}/exact_match") for k in ("val", "test")}
    print(f"exact match: base val {base['val']}, test {base['test']}; tuned test {scores.get('exact_match')} "
          f"on {scores.get('n')} prompts")
    print(f"served answer: {answer!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 steps on 100 records, no base score: the commands only")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a new one under /tmp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="smollm2-walkthrough-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"working in {work}")
    walkthrough(work, args.quick)


if __name__ == "__main__":
    main()
