"""Tiny randomly initialised causal LMs (Llama, Qwen2, GPT-2) with a locally trained BPE tokenizer,
and instruction data, built once per session (nothing is downloaded)."""

import json
import random

import pytest

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def arithmetic_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    pairs = [(a, b) for a in range(10) for b in range(10)]
    rng.shuffle(pairs)
    return [{"prompt": f"What is {a}+{b}?", "response": str(a + b)} for a, b in pairs[:n]]


def preference_records(n: int, seed: int = 0) -> list[dict]:
    """Arithmetic questions whose chosen answer is the sum and whose rejected answer has a zero too many
    (ten times the sum): a preference a tiny model can learn and carry over to prompts it never saw."""
    return [{"prompt": r["prompt"], "chosen": r["response"], "rejected": r["response"] + "0"}
            for r in arithmetic_records(n, seed)]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def build_tiny_lm(directory, arch: str, chat_template: str | None = None):
    """A tiny random `arch` model (llama, qwen2, gpt2) with a BPE tokenizer trained on arithmetic text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers import Qwen2Config, Qwen2ForCausalLM
    import torch

    text = [f"User: What is {a}+{b}?\nAssistant: {a + b}\n" for a in range(10) for b in range(10)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<unk>", "</s>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
                                     bos_token="<s>")
    if chat_template:
        hf_tok.chat_template = chat_template
    v = len(hf_tok)
    torch.manual_seed(0)
    small = dict(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128, eos_token_id=2, pad_token_id=0, bos_token_id=3)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**small))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**small))
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=v, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                           eos_token_id=2, bos_token_id=3, pad_token_id=0))
    model.save_pretrained(str(directory))
    hf_tok.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_lms(tmp_path_factory):
    """{"llama": dir, "qwen2": dir (with a chat template), "gpt2": dir}."""
    root = tmp_path_factory.mktemp("tiny-lms")
    return {arch: build_tiny_lm(root / arch, arch, CHAT_TEMPLATE if arch == "qwen2" else None)
            for arch in ("llama", "qwen2", "gpt2")}


@pytest.fixture(scope="session")
def sft_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("sft") / "train.jsonl", arithmetic_records(100))


@pytest.fixture(scope="session")
def pairs_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("preference") / "pairs.jsonl", preference_records(100))


GPT = ["data.name=corpus", "data.tokenizer=char", "data.block_size=48", "data.windows_per_epoch=256",
       "data.test_fraction=0", "model.name=gpt", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
       "train.epochs=1", "train.batch_size=32", "train.threads=1", "optim.lr=3e-3", "log.progress=false",
       "log.tensorboard=false"]


@pytest.fixture(scope="session")
def gpt_run(tmp_path_factory):
    """A tiny character-level GPT run pretrained for a few steps on arithmetic in the default chat format."""
    import zerotune
    from zerotune.config import load_config

    root = tmp_path_factory.mktemp("gpt")
    corpus = root / "arith.txt"
    lines = [f"User: What is {a}+{b}?\nAssistant: {a + b}\n" for a in range(10) for b in range(10)]
    corpus.write_text("".join(lines * 3), encoding="utf-8")
    cfg = load_config(None, [*GPT, f"data.path={corpus}", f"data.cache_dir={root / 'cache'}", f"log.dir={root}",
                             "log.name=gpt"])
    return zerotune.train(cfg).run_dir


@pytest.fixture(scope="session")
def jsonl():
    """``jsonl(path, records)``: write records one a line; returns the path as text."""
    return write_jsonl
