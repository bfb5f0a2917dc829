"""A GGUF file of `zerotune export RUN --format gguf` run by llama.cpp itself (llama-cpp-python), the runtime it is
written for, where the export's own check reads it with transformers: llama.cpp must encode text as the run's
tokenizer does, answer greedily with the same token ids as zerotune (f16: every answer; q8_0: the share the export
promises), and chat through the file's own template, stopping at its end-of-turn token.

Optional: llama-cpp-python is built from source (minutes), so it is not in `dev`; without it the module skips.
"""

from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed "
                                                    "(pip install 'zerotune[llamacpp]')")

from zerotune.export.gguf_export import MIN_AGREEMENT, export_gguf, prompt_ids  # noqa: E402
from zerotune.export.hf_dir import tuned_causal_lm  # noqa: E402
from zerotune.export.llamacpp_answers import llamacpp_answers, open_gguf  # noqa: E402
from zerotune.export.lm_answers import greedy_answers  # noqa: E402
from zerotune.export.lm_prompts import check_conversations  # noqa: E402
from zerotune.pipeline.generate import generate  # noqa: E402

from test_sft_serve import tune  # noqa: E402

# Byte-level BPE is where runtimes part: bytes of non-ASCII text, runs of spaces, digits, special tokens.
TEXTS = ["What is 3+4?", "  two spaces, a tab\tand a newline\n", "héllo wörld, naïve café", "数字 12345 你好",
         "emoji 🙂👍 end", "</s> between <s> words"]
ANSWER_TOKENS = 8


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def exported(request, tmp_path_factory, tiny_lms, sft_file):
    """(run, its model as exported, {quant: GGUF file}, llama.cpp on the f16 file) of a tiny model tuned on 80 of
    the 100 sums: the llama one formats prompts with zerotune's default template, the qwen2 one with its
    tokenizer's own. Fully tuned for 150 steps (seconds): under LoRA these tiny models learn little (one or two
    answers for every prompt, near ties that Q8_0 flips), and fewer steps leave the Qwen2 with two answers."""
    arch = request.param
    root = tmp_path_factory.mktemp(f"llamacpp-{arch}")
    lines = Path(sft_file).read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "train.jsonl").write_text("".join(lines[:80]), encoding="utf-8")
    run = tune(root, tiny_lms[arch], root / "train.jsonl", "train.max_steps=150", "train.epochs=40",
               "optim.lr=1e-2", "finetune.strategy=full", f"log.name={arch}")
    files = {q: export_gguf(run, q).path for q in ("f16", "q8_0")}
    model = open_gguf(files["f16"], threads=1, context=128)
    yield run, tuned_causal_lm(run, "best", "gguf"), files, model
    model.close()


def test_llama_cpp_encodes_text_and_chat_prompts_as_the_run_does(exported):
    _, lm, _, model = exported
    tokenizer = lm.tokenizer
    for text in TEXTS:
        assert model.tokenize(text.encode(), add_bos=False, special=True) == tokenizer(
            text, add_special_tokens=False)["input_ids"], text
        assert model.detokenize(tokenizer(text, add_special_tokens=False)["input_ids"], special=True).decode() == text
    conversations, _ = check_conversations(lm.run.config)
    fmt = lm.chat
    # add_bos=True: llama.cpp adds a start token only where the file says the tokenizer adds one
    assert [model.tokenize(fmt.prompt_text(c).encode(), add_bos=True, special=True) for c in conversations] == \
        prompt_ids(lm, conversations)


def test_greedy_answers_are_zerotunes_token_for_token(exported):
    _, lm, files, _ = exported
    conversations, _ = check_conversations(lm.run.config)
    ids = prompt_ids(lm, conversations)
    ours = greedy_answers(lm.model, ids, lm.stop_ids, ANSWER_TOKENS).ids
    assert len(ids) == 20 and len({tuple(a) for a in ours}) > 5  # answers of the tuned sums, not one for all
    assert all(a[-1] in lm.stop_ids for a in ours)  # each ends at its end of answer within the budget
    assert llamacpp_answers(files["f16"], ids, lm.stop_ids, ANSWER_TOKENS, threads=1).ids == ours
    q8 = llamacpp_answers(files["q8_0"], ids, lm.stop_ids, ANSWER_TOKENS, threads=1).ids
    assert sum(a == b for a, b in zip(q8, ours)) >= MIN_AGREEMENT["q8_0"] * len(ours)


def test_a_chat_through_the_files_own_template_stops_at_its_end_of_turn(exported):
    run, lm, _, model = exported
    prompts = [c[-1]["content"] for c in check_conversations(lm.run.config)[0][:5]]
    for prompt in prompts:
        chat = model.create_chat_completion(messages=[{"role": "user", "content": prompt}], temperature=0.0,
                                                    repeat_penalty=1.0, max_tokens=ANSWER_TOKENS)
        choice = chat["choices"][0]
        assert choice["finish_reason"] == "stop" and chat["usage"]["completion_tokens"] < ANSWER_TOKENS
        assert choice["message"]["content"] == "".join(generate(run, prompt, temperature=0,
                                                                max_new_tokens=ANSWER_TOKENS))
