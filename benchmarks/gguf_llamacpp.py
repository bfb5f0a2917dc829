"""A tuned causal LM's GGUF files run by llama.cpp (llama-cpp-python) against `zerotune generate`: greedy answers
the same token for token, and tokens per second.

    python benchmarks/gguf_llamacpp.py RUN [--prompts FILE.jsonl] [--max-tokens 24] [--threads 2]

RUN is a run of a Llama or Qwen2 transformers causal LM (instruction-tuned, LoRA or not). The prompts
are the user turns of FILE's records ({"prompt": ...} a line), or the export's own check prompts
(the run's held-out records first). zerotune answers each greedily through the decode path of
`zerotune generate` (the run's model as loaded, adapters unmerged); then the model as
`export --format gguf` takes it is written in f16 and q8_0 to a temporary directory (no
transformers read-back), and llama.cpp answers the same prompt ids greedily, stopping at the
same end-of-answer ids. Tokens per second count every answer token over the whole time of each
answer, prompt included, one prompt after the other on --threads threads for both.
Needs `pip install 'zerotune[llamacpp]'`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def zerotune_answers(run_dir: str, prompts: list[list[int]], stop_ids: list[int], limit: int):
    """(answers, tokens/s) by the run's model through `zerotune generate`'s sampler at temperature 0."""
    from zerotune.lm.sampling import sample_tokens
    from zerotune.runload.load import load_run

    model = load_run(run_dir, "best").model
    answers, seconds = [], 0.0
    for ids in prompts:
        t0 = time.perf_counter()
        answer = []
        for token in sample_tokens(model, ids, limit, temperature=0):
            answer.append(token)
            if token in stop_ids:
                break
        seconds += time.perf_counter() - t0
        answers.append(answer)
    return answers, sum(map(len, answers)) / seconds


def conversations(lm, prompts_file: str | None) -> list[list[dict]]:
    from zerotune.export.lm_prompts import check_conversations

    if prompts_file is None:
        return check_conversations(lm.run.config)[0]
    lines = Path(prompts_file).read_text(encoding="utf-8").splitlines()
    return [[{"role": "user", "content": json.loads(line)["prompt"]}] for line in lines if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run of a Llama or Qwen2 transformers causal LM")
    parser.add_argument("--prompts", help="JSONL records with a 'prompt' field (default: the export's check prompts)")
    parser.add_argument("--max-tokens", type=int, default=24, help="answer tokens at most")
    parser.add_argument("--threads", type=int, default=2, help="threads of both runtimes")
    args = parser.parse_args()

    from zerotune.compute.threads import torch_threads
    from zerotune.export.gguf_export import prompt_ids, write_file
    from zerotune.export.hf_dir import tuned_causal_lm
    from zerotune.export.llamacpp_answers import llamacpp_answers

    with torch_threads(args.threads):
        lm = tuned_causal_lm(args.run, "best", "gguf")
        ids = prompt_ids(lm, conversations(lm, args.prompts))
        ours, ours_speed = zerotune_answers(args.run, ids, lm.stop_ids, args.max_tokens)
        rows = [("zerotune generate (PyTorch fp32)", None, ours_speed, len(ours))]
        with tempfile.TemporaryDirectory(prefix="gguf-llamacpp-") as tmp:
            for quant in ("f16", "q8_0"):
                path = Path(tmp) / f"model-{quant}.gguf"
                write_file(lm, path, quant)
                theirs = llamacpp_answers(path, ids, lm.stop_ids, args.max_tokens, args.threads)
                rows.append((f"llama.cpp gguf {quant}", path.stat().st_size, theirs.tokens_per_s,
                             sum(a == b for a, b in zip(theirs.ids, ours))))
    print(f"{args.run}: {len(ids)} prompts, greedy answers of up to {args.max_tokens} tokens, "
          f"{args.threads} thread(s), {sum(map(len, ours))} answer tokens from zerotune")
    print(f"| variant | MB | tokens/s | vs zerotune | same answers |\n|---|---|---|---|---|")
    for name, size, speed, same in rows:
        mb = "" if size is None else f"{size / 1e6:.1f}"
        print(f"| {name} | {mb} | {speed:.1f} | {speed / ours_speed:.2f}x | {same}/{len(ids)} |")


if __name__ == "__main__":
    main()
