"""`zerotune generate`: continue a prompt with a language-model run, streaming its pieces."""

from __future__ import annotations

import sys


def cmd_generate(args) -> int:
    from ..pipeline.generate import generate

    pieces = generate(args.run, args.prompt, max_new_tokens=args.max_tokens, temperature=args.temperature,
                      top_k=args.top_k, top_p=args.top_p, seed=args.seed, stop=args.stop or (),
                      checkpoint=args.checkpoint, use_cache=not args.no_cache, device=args.device,
                      system=args.system)
    from ..runload.load import read_run_config

    shown = "" if read_run_config(args.run).data.name == "sft" else args.prompt  # an answer, not a continuation
    if args.no_stream:
        print(shown + "".join(pieces), flush=True)
        return 0
    sys.stdout.write(shown)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def add_parser(subparsers):
    """Register `generate` on the CLI's subparsers."""
    g = subparsers.add_parser("generate", help="continue a prompt with a language-model run, streaming")
    g.add_argument("run", help="run directory of a language model (model gpt, data corpus) or an instruction-tuned one")
    g.add_argument("--prompt", required=True, help="text to continue (an instruction-tuned run: the user's turn, "
                                                   "formatted with the run's chat template)")
    g.add_argument("--max-tokens", type=int, default=200, help="tokens to generate at most (default 200)")
    g.add_argument("--temperature", type=float, default=0.8, help="0: greedy; higher: more random (default 0.8)")
    g.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    g.add_argument("--top-p", type=float, help="sample among the most likely tokens up to probability p")
    g.add_argument("--seed", type=int, help="seed for a reproducible sample")
    g.add_argument("--stop", action="append", metavar="TEXT", help="stop before this text (repeatable)")
    g.add_argument("--system", help="instruction-tuned runs: a system message before the prompt")
    g.add_argument("--checkpoint", default="best", choices=["best", "last"])
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    g.add_argument("--no-stream", action="store_true", help="print the whole text at the end")
    g.add_argument("--no-cache", action="store_true", help="recompute every past token at each step (slower; same output)")
    g.set_defaults(func=cmd_generate)
    return g
