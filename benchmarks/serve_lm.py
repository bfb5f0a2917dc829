"""Generation throughput of the OpenAI-compatible server: 1 and 8 concurrent streams, batched and not.

    python benchmarks/serve_lm.py [RUN] [--requests 4] [--max-tokens 48] [--threads 1] [--max-wait-ms 20]

Serves RUN (a language-model run), or without one a GPT of the Shakespeare recipe's size with
random weights (4 layers, 4 heads, 128 channels, context 64, 65 characters: throughput does not
depend on the weights), on 127.0.0.1 in this process. Each of N client threads sends --requests
streaming completions (stream: true, temperature 0.8, --max-tokens each) one after the other.
Prints completion tokens per second for N = 1 and 8, with batching (up to 8 rows per decode
step, a --max-wait-ms gathering window, requests joining running batches) and without (one
request at a time), the batches started and the requests that joined a running one; and, as the
floor, plain sequential generation in this process (the decode loop of `zerotune generate`, no
server) of the same 8 x --requests prompts.
"""

from __future__ import annotations

import argparse
import json
import string
import threading
import time

import httpx
import torch

from zerotune.lm.decode import Row, decode
from zerotune.lm.sampler import Sampler
from zerotune.lm.textmodel import GPTTextModel
from zerotune.models.gpt import GPT, GPTConfig
from zerotune.serve import ServeOptions, create_app, load_served_model, running_server
from zerotune.serve.served_lm import ServedLM

PROMPTS = ["ROMEO:", "JULIET:\nO", "First Citizen:", "KING HENRY:", "To be", "MENENIUS:\nWhat", "Thou art",
           "LADY:"]  # at most 16 characters: with 48 new tokens, within the context of 64


class Chars:
    """A character tokenizer over 65 characters (as Tiny Shakespeare's), for the random-weight model."""

    chars = string.ascii_letters + " \n:,.;!?'-&$3"

    def encode(self, text, what="text"):
        return [self.chars.index(c) for c in text]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)


def served_model(run: str | None):
    if run:
        return load_served_model(run)
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(n_layer=4, n_head=4, n_embd=128, activation="relu2"), 64, 65)
    return ServedLM(GPTTextModel(gpt, Chars(), "random-gpt"), "random")


def stream_tokens(client: httpx.Client, model: str, prompt: str, max_tokens: int) -> int:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "stream": True,
            "stream_options": {"include_usage": True}}
    used = 0
    with client.stream("POST", "/v1/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                used = (json.loads(line[6:]).get("usage") or {}).get("completion_tokens", used)
    return used


def measure(served, batching: bool, streams: int, requests: int, max_tokens: int, wait_ms: float) -> dict:
    app = create_app(served, ServeOptions(batching=batching, max_batch=8, max_wait_ms=wait_ms))
    counts = [0] * streams
    with running_server(app) as url:
        def client(i):
            with httpx.Client(base_url=url, trust_env=False, timeout=300) as c:
                for k in range(requests):
                    counts[i] += stream_tokens(c, served.name, PROMPTS[(i + k) % len(PROMPTS)], max_tokens)

        stream_tokens(httpx.Client(base_url=url, trust_env=False), served.name, "warm", 4)  # first call: allocations
        threads = [threading.Thread(target=client, args=(i,)) for i in range(streams)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        stats = app.state.scheduler.stats()
    return {"batching": batching, "streams": streams, "tokens": sum(counts), "seconds": round(wall, 2),
            "tokens_per_s": round(sum(counts) / wall, 1), "largest_batch": stats["largest_batch"],
            "batches": stats["batches"] - 1, "joined": stats["joined"]}


def sequential(served, requests: int, max_tokens: int) -> dict:
    """The same prompts, sampling and stop token as the server's, generated one after another in-process."""
    model = served.model
    tokens, start = 0, time.perf_counter()
    for k in range(requests):
        row = Row(model.encode(PROMPTS[k % len(PROMPTS)]), max_tokens, Sampler(0.8, seed=k),
                  stop_id=model.eos_id)
        tokens += sum(tok is not None for handout in decode(model, [row]) for _, tok in handout)
    wall = time.perf_counter() - start
    return {"tokens": tokens, "seconds": round(wall, 2), "tokens_per_s": round(tokens / wall, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", nargs="?", help="a language-model run (default: a random GPT of the recipe's size)")
    p.add_argument("--requests", type=int, default=4, help="requests per stream (default: 4)")
    p.add_argument("--max-tokens", type=int, default=48, help="tokens per request (default: 48)")
    p.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default: 1)")
    p.add_argument("--max-wait-ms", type=float, default=20, help="the batching window (default: 20)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    served = served_model(args.run)
    rows = [measure(served, batching, streams, args.requests, args.max_tokens, args.max_wait_ms)
            for streams in (1, 8) for batching in (False, True)]
    print(f"{'batching':>8} {'streams':>7} {'tokens':>6} {'seconds':>7} {'tokens/s':>8} {'largest batch':>13} "
          f"{'batches':>7} {'joined':>6}")
    for r in rows:
        print(f"{'on' if r['batching'] else 'off':>8} {r['streams']:>7} {r['tokens']:>6} {r['seconds']:>7} "
              f"{r['tokens_per_s']:>8} {r['largest_batch']:>13} {r['batches']:>7} {r['joined']:>6}")
    on, off = (next(r for r in rows if r["streams"] == 8 and r["batching"] == b) for b in (True, False))
    alone = sequential(served, 8 * args.requests, args.max_tokens)
    print(f"sequential generate, no server: {alone['tokens']} tokens in {alone['seconds']} s, "
          f"{alone['tokens_per_s']} tokens/s")
    print(f"8 streams: batched / unbatched throughput = {on['tokens_per_s'] / off['tokens_per_s']:.2f}x; "
          f"batched / sequential generate = {on['tokens_per_s'] / alone['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
