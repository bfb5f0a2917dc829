"""Batched decoding: rows of a batch give what they give alone, for the zerotune GPT and Hugging Face models.

The scheduler is driven directly here, with every job submitted before it starts, so the batch
it forms is known; tiny random models keep this fast.
"""

import asyncio

import httpx
import openai
import pytest
import torch

from zerotune.lm.textmodel import GPTTextModel, HFTextModel
from zerotune.models.gpt import GPT, GPTConfig
from zerotune.serve import ServeOptions, create_app, load_served_model, running_server
from zerotune.serve.lm_scheduler import Job, Scheduler

PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [9], [4, 4, 2], [3, 1, 4, 1, 5], [8, 8]]


async def _collect(job: Job) -> list[int]:
    out = []
    while (tok := await job.queue.get()) is not None:
        out.append(tok)
    return out


def run_jobs(model, specs, batch: int) -> tuple[list[list[int]], Scheduler]:
    """Tokens of each (prompt, max_tokens, temperature, seed) job, with all jobs waiting before the start."""

    async def main():
        scheduler = Scheduler(model, max_batch=batch, max_wait_ms=0)
        jobs = [scheduler.submit(Job(p, n, temperature=t, top_p=0.9 if t else None, seed=s)) for p, n, t, s in specs]
        scheduler.start()
        try:
            return await asyncio.gather(*map(_collect, jobs)), scheduler
        finally:
            await asyncio.to_thread(scheduler.stop)

    return asyncio.run(main())


class Ids:
    """A tokenizer of ids written as text, enough for GPTTextModel."""

    def encode(self, text, what="text"):
        return [int(t) for t in text.split()]

    def decode(self, ids):
        return " ".join(map(str, ids))


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_gpt_batched_rows_equal_single_rows(positions):
    torch.manual_seed(0)
    model = GPTTextModel(GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, positions=positions), 24, 13), Ids(), "t")
    specs = [(p, 6 + i, 0.0 if i % 2 else 1.0, 100 + i) for i, p in enumerate(PROMPTS)]
    alone = [run_jobs(model, [spec], batch=1)[0][0] for spec in specs]
    together, scheduler = run_jobs(model, specs, batch=8)
    assert together == alone and [len(t) for t in together] == [6 + i for i in range(len(specs))]
    assert scheduler.batches == 1 and scheduler.largest_batch == len(specs) and scheduler.batched_steps > 0


@pytest.mark.parametrize("kind", ["rope", "learned", "llama", "qwen2", "gpt2"])
def test_requests_join_a_running_batch_and_equal_single_rows(kind, tmp_path):
    torch.manual_seed(1)
    if kind in ("rope", "learned"):
        model = GPTTextModel(GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, positions=kind), 24, 13), Ids(), "t")
    else:
        tokenizer = _tokenizer(tmp_path)
        model = HFTextModel(_hf_model(kind, len(tokenizer)), tokenizer, kind)
        model.eos_id = None  # a random model may end early; here every row runs its full length
    first = ([1, 2, 3, 4, 5, 6, 7], 12, 0.0, None)
    later = [([9, 3, 3], 6, 0.0, None), ([4, 4, 2, 1, 1], 9, 1.0, 7), ([5] * 10, 4, 0.0, None)]
    alone = [run_jobs(model, [spec], batch=1)[0][0] for spec in [first, *later]]

    async def main():
        scheduler = Scheduler(model, max_batch=8)
        jobs = [scheduler.submit(Job(p, n, temperature=t, top_p=0.9 if t else None, seed=s))
                for p, n, t, s in [first, *later]]
        scheduler._waiting.clear()  # the first job runs alone; the others wait to join it
        scheduler._waiting.extend(jobs[1:])
        await asyncio.to_thread(scheduler._run, jobs[:1])
        return await asyncio.gather(*map(_collect, jobs)), scheduler

    together, scheduler = asyncio.run(main())
    assert together == alone
    # the 10-token prompt joins once the batch reaches position 10; the rows leave as they finish
    assert scheduler.batches == 1 and scheduler.joined == 3 and scheduler.largest_batch == 4


def test_a_cache_that_cannot_take_rows_sends_them_to_the_next_batch():
    class NoJoin(GPTTextModel):
        def join(self, state, prompts):
            return None

    torch.manual_seed(0)
    model = NoJoin(GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16), 24, 13), Ids(), "t")
    specs = [([1, 2, 3, 4], 6, 0.0, None), ([5, 6], 3, 0.0, None)]
    alone = [run_jobs(model, [spec], batch=1)[0][0] for spec in specs]

    async def main():
        scheduler = Scheduler(model, max_batch=8, max_wait_ms=0)
        jobs = [scheduler.submit(Job(p, n, temperature=0.0)) for p, n, _, _ in specs]
        scheduler._waiting.remove(jobs[0])
        await asyncio.to_thread(scheduler._run, jobs[:1])  # the second job is refused by join, stays waiting
        assert list(scheduler._waiting) == jobs[1:] and scheduler.joined == 0
        scheduler.start()
        try:
            return await asyncio.gather(*map(_collect, jobs)), scheduler
        finally:
            await asyncio.to_thread(scheduler.stop)

    together, scheduler = asyncio.run(main())
    assert together == alone and scheduler.batches == 2


def test_batch_keeps_to_the_context():
    torch.manual_seed(0)
    model = GPTTextModel(GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16), 12, 13), Ids(), "t")
    # 7 prompt tokens + 5 new fit alone; with the 9 new tokens of the next job they would not
    (a, b), scheduler = run_jobs(model, [([1] * 7, 5, 0.0, None), ([2], 9, 0.0, None)], batch=8)
    assert (len(a), len(b), scheduler.batches) == (5, 9, 2)


def _tokenizer(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the cat sees the moon", "a dog likes the sea", "user assistant system"] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    fast.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                          "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    return fast


def _hf_model(arch: str, vocab: int):
    import transformers

    torch.manual_seed(0)
    if arch == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                      bos_token_id=0, eos_token_id=1)
        return transformers.GPT2LMHeadModel(cfg)
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=1)
    if arch == "llama":
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(**common))
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common))


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_hf_batched_rows_equal_single_rows(tmp_path, arch):
    tokenizer = _tokenizer(tmp_path)
    model = HFTextModel(_hf_model(arch, len(tokenizer)), tokenizer, arch)
    specs = [(p, 5 + i, 0.0, None) for i, p in enumerate(PROMPTS)]
    alone = [run_jobs(model, [spec], batch=1)[0][0] for spec in specs]
    together, scheduler = run_jobs(model, specs, batch=8)
    assert together == alone and scheduler.largest_batch == len(specs)


def test_hf_directory_is_served_with_its_chat_template(tmp_path):
    tokenizer = _tokenizer(tmp_path)
    directory = tmp_path / "tiny-llama"
    _hf_model("llama", len(tokenizer)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    served = load_served_model(directory)
    messages = [{"role": "user", "content": "the cat"}]
    prompt = served.model.encode_chat(messages)
    assert served.model.decode(prompt) == "user\nthe cat\nassistant\n"  # the template, special tokens skipped
    (expected,), _ = run_jobs(served.model, [(prompt, 8, 0.0, None)], batch=1)
    with running_server(create_app(served, ServeOptions())) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=60))
        out = client.chat.completions.create(model="tiny-llama", messages=messages, max_tokens=8, temperature=0)
        # lm-eval's scoring request on a byte-level BPE model: the ids it got from /tokenize, echoed and scored
        ids = httpx.post(f"{url}/tokenize", json={"prompt": "the cat sees"}, trust_env=False).json()["tokens"]
        info = httpx.get(f"{url}/tokenizer_info", trust_env=False).json()
        scored = client.completions.create(model="tiny-llama", prompt=[ids], max_tokens=0, echo=True, logprobs=1)
    assert out.usage.prompt_tokens == len(prompt) and out.usage.completion_tokens == len(expected)
    assert out.choices[0].message.content == served.model.decode(expected)
    with torch.no_grad():
        logp = torch.log_softmax(served.model.model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    lp = scored.choices[0].logprobs
    assert info["eos_token"] == "</s>" and scored.choices[0].text == "the cat sees" == "".join(lp.tokens)
    assert lp.token_logprobs[0] is None and lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(ids))]
    assert lp.token_logprobs[1:] == pytest.approx([logp[t - 1, ids[t]].item() for t in range(1, len(ids))], abs=1e-5)
