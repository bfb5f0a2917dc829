"""/v1/completions with echo and logprobs, prompts of token ids, and /tokenize: checked against the run's
model scored in-process, and in the exact requests EleutherAI's lm-eval sends (`local-completions`)."""

import httpx
import pytest
import torch

from zerotune import load_run
from zerotune.serve import create_app, load_served_model, running_server


@pytest.fixture(scope="module")
def scored(lm_run):
    """(the run's model, its tokenizer's encode, a client of a server on the run)."""
    served = load_served_model(lm_run)
    with running_server(create_app(served)) as url, httpx.Client(base_url=url, trust_env=False, timeout=60) as c:
        yield load_run(lm_run).model, served.model.encode, c


def _reference(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids]))[0].double(), -1)  # (T, V)


def test_echo_logprobs_equal_the_model_in_process(scored):
    model, encode, c = scored
    body = c.post("/v1/completions", json={"model": "lm", "prompt": "the cat sees", "max_tokens": 3, "echo": True,
                                           "logprobs": 2, "temperature": 0}).json()
    choice, prompt = body["choices"][0], encode("the cat sees")
    lp = choice["logprobs"]
    assert choice["text"].startswith("the cat sees") and len(choice["text"]) == 15  # one character per token
    assert lp["tokens"] == list(choice["text"]) and lp["text_offset"] == list(range(15))
    ids = encode(choice["text"])
    ref = _reference(model, ids)
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    expected = [ref[t - 1, ids[t]].item() for t in range(1, len(ids))]
    assert lp["token_logprobs"][1:] == pytest.approx(expected, abs=1e-5)
    for t in range(1, len(ids)):  # the two most likely tokens at each position, as the model ranks them
        top = ref[t - 1].topk(2)
        assert list(lp["top_logprobs"][t].values()) == pytest.approx(top.values.tolist(), abs=1e-5)
    assert body["usage"] == {"prompt_tokens": len(prompt), "completion_tokens": 3, "total_tokens": len(prompt) + 3}
    # max_tokens 0: the prompt alone is scored, up to the whole context
    full = encode("the cat sees the moon. a dog likes")[:32]
    zero = c.post("/v1/completions", json={"model": "lm", "prompt": full, "max_tokens": 0, "echo": True,
                                           "logprobs": 0}).json()["choices"][0]
    assert zero["logprobs"]["token_logprobs"][1:] == pytest.approx(
        [_reference(model, full)[t - 1, full[t]].item() for t in range(1, 32)], abs=1e-5)
    assert zero["finish_reason"] == "length" and len(zero["text"]) == 32


def test_lm_eval_requests_score_choices_as_in_process(scored):
    """lm-eval's local-completions: the ids from /tokenize, then echo with one new token, and the sum
    of token_logprobs[ctxlen:-1] (its parse_logprobs) as the log-likelihood of the continuation."""
    model, encode, c = scored
    context = c.post("/tokenize", json={"prompt": "a dog likes", "add_special_tokens": False}).json()["tokens"]
    assert context == encode("a dog likes")
    for continuation in (" the sea.", " eht aes."):
        cont = encode(continuation)
        body = c.post("/v1/completions", json={"model": "lm", "prompt": [context + cont], "temperature": 0,
                                               "max_tokens": 1, "logprobs": 1, "seed": 1234, "echo": True}).json()
        lp = body["choices"][0]["logprobs"]
        got = sum(lp["token_logprobs"][len(context):-1])
        greedy = all(t == max(top.values()) for t, top in zip(lp["token_logprobs"][len(context):-1],
                                                              lp["top_logprobs"][len(context):-1]))
        ref = _reference(model, context + cont)
        want = sum(ref[t - 1, (context + cont)[t]].item() for t in range(len(context), len(context) + len(cont)))
        assert got == pytest.approx(want, abs=1e-4)
        assert greedy == all(ref[t - 1].argmax().item() == (context + cont)[t]
                             for t in range(len(context), len(context) + len(cont)))
    assert c.post("/detokenize", json={"tokens": context}).json() == {"prompt": "a dog likes"}
    assert c.get("/tokenizer_info").json()["eos_token"] is None  # a character vocabulary has no end token


@pytest.mark.parametrize("body, message", [
    ({"prompt": [99]}, "each from 0 to 25"),
    ({"prompt": [[1], [2]]}, "one prompt per request"),
    ({"prompt": "the", "max_tokens": 0}, "needs echo"),
    ({"prompt": "the", "echo": True, "stream": True}, "stream: false"),
    ({"prompt": "the", "logprobs": 6}, "less than or equal to 5"),
    ({"prompt": "the cat sees the moon. a dog likes", "max_tokens": 0, "echo": True}, "context"),
])
def test_scoring_errors_name_the_cause(scored, body, message):
    r = scored[2].post("/v1/completions", json={"model": "lm", **body})
    assert r.status_code == 400 and message in r.json()["error"]["message"]
    for path, bad in (("/tokenize", {"prompt": "Q"}), ("/detokenize", {"tokens": [-1]})):
        r = scored[2].post(path, json=bad)
        assert r.status_code == 400 and r.json()["error"]["param"] in ("prompt", "tokens")
