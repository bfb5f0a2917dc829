"""The OpenAI-compatible API of a language-model run, through the official `openai` client on loopback.

References come from the KV-cache sampler used by `zerotune generate` (`lm.sampling.complete`),
so the server's text, greedy or seeded, is checked token for token against it.
"""

import threading

import httpx
import openai
import pytest

from zerotune import load_run
from zerotune.data.lm_tokenizer import load_tokenizer_dir
from zerotune.lm.sampling import complete
from zerotune.data.chat import default_template
from zerotune.run.files import RunDir
from zerotune.serve import ServeOptions, create_app, load_served_model, running_server

TOKEN = "openai-token-123"


@pytest.fixture(scope="module")
def reference(lm_run):
    run = load_run(lm_run)
    tokenizer = load_tokenizer_dir(RunDir(lm_run).tokenizer)
    return lambda prompt, **kw: complete(run.model, tokenizer, prompt, **kw)


@pytest.fixture(scope="module")
def lm_app(lm_run):
    # a wide gathering window, so that requests sent together are batched even on a busy machine
    return create_app(load_served_model(lm_run), ServeOptions(token=TOKEN, max_wait_ms=300, max_batch=8))


@pytest.fixture(scope="module")
def lm_url(lm_app):
    with running_server(lm_app) as url:
        yield url


@pytest.fixture(scope="module")
def client(lm_url):
    return openai.OpenAI(base_url=f"{lm_url}/v1", api_key=TOKEN, max_retries=0,
                         http_client=httpx.Client(trust_env=False, timeout=60))


def test_models_lists_the_run_by_name(client, lm_run):
    assert [m.id for m in client.models.list().data] == [lm_run.name]
    assert client.models.retrieve(lm_run.name).id == lm_run.name


def test_completion_plain_and_streamed_equal_the_sampler(client, lm_run, reference):
    expected = reference("the cat ", max_new_tokens=20, temperature=0)
    out = client.completions.create(model=lm_run.name, prompt="the cat ", max_tokens=20, temperature=0)
    assert out.choices[0].text == expected and out.choices[0].finish_reason == "length"
    assert out.object == "text_completion"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (8, 20, 28)

    chunks = list(client.completions.create(model=lm_run.name, prompt="the cat ", max_tokens=20, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert len(chunks) > 3 and "".join(c.choices[0].text for c in chunks if c.choices) == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 20 and chunks[-1].usage.prompt_tokens == 8


def test_stop_sequences_end_the_text_before_them(client, reference):
    for stop in (" ", ["moon", "s"], "\n"):
        expected = reference("a dog", max_new_tokens=24, temperature=0, stop=[stop] if isinstance(stop, str) else stop)
        out = client.completions.create(model="lm", prompt="a dog", max_tokens=24, temperature=0, stop=stop)
        assert out.choices[0].text == expected and out.choices[0].finish_reason == "stop", stop
        streamed = client.completions.create(model="lm", prompt="a dog", max_tokens=24, temperature=0, stop=stop, stream=True)
        assert "".join(c.choices[0].text for c in streamed) == expected


def test_seeded_sampling_equals_the_sampler(client, reference):
    expected = reference("my friend", max_new_tokens=15, temperature=0.9, top_p=0.8, seed=5)
    out = client.completions.create(model="lm", prompt="my friend", max_tokens=15, temperature=0.9, top_p=0.8, seed=5)
    assert out.choices[0].text == expected


def test_concurrent_requests_are_batched_and_equal_sequential_outputs(lm_app, client, reference):
    prompts = ["the cat ", "a dog", "my friend sees", "the king", "a bird likes the", "the", "a", "the moon"]
    expected = [reference(p, max_new_tokens=10 + i, temperature=0) for i, p in enumerate(prompts)]
    scheduler = lm_app.state.scheduler
    before = scheduler.batched_steps
    results = [None] * len(prompts)
    start = threading.Barrier(len(prompts))

    def ask(i):
        start.wait()
        results[i] = client.completions.create(model="lm", prompt=prompts[i], max_tokens=10 + i, temperature=0).choices[0].text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected
    assert scheduler.largest_batch > 1 and scheduler.batched_steps > before


def test_chat_needs_the_characters_of_the_chat_format(client):
    # this run's characters have no ':', which the plain chat format needs: the client hears why
    with pytest.raises(openai.BadRequestError, match="vocabulary"):
        client.chat.completions.create(model="lm", messages=[{"role": "user", "content": "hi"}], max_tokens=5)


def test_chat_plain_and_streamed_use_the_default_format(chat_run):
    run = load_run(chat_run)
    tokenizer = load_tokenizer_dir(RunDir(chat_run).tokenizer)
    messages = [{"role": "user", "content": "a dog"}]
    expected = complete(run.model, tokenizer, default_template(messages), max_new_tokens=30, temperature=0,
                        stop=["\n"])
    app = create_app(load_served_model(chat_run))
    with running_server(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=60))
        out = client.chat.completions.create(model="chat", messages=messages, max_tokens=30, temperature=0)
        assert out.object == "chat.completion" and out.choices[0].message.role == "assistant"
        assert out.choices[0].message.content == expected and out.choices[0].finish_reason == "stop"
        assert out.usage.prompt_tokens == len(default_template(messages))
        chunks = list(client.chat.completions.create(model="chat", messages=messages, max_tokens=30, temperature=0,
                                                     stop="\n", stream=True))
        batching = httpx.get(f"{url}/metadata", trust_env=False).json()["batching"]
    assert batching["max_wait_ms"] == 20 and batching["batches"] == 2  # a language model's default window
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].object == "chat.completion.chunk"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_errors_in_openai_shape(client, lm_url, lm_run):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4o", prompt="the cat", max_tokens=5)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{lm_url}/v1", api_key="wrong-token", max_retries=0,
                      http_client=httpx.Client(trust_env=False)).models.list()
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model="lm", prompt="the cat", max_tokens=100)
    with pytest.raises(openai.BadRequestError, match="n must be 1"):
        client.completions.create(model="lm", prompt="the cat", max_tokens=5, n=2)


BAD = [
    ("/v1/chat/completions", {"max_tokens": 3}, "messages"),
    ("/v1/chat/completions", {"messages": []}, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ("/v1/chat/completions", {"messages": [{"content": "hi"}]}, "messages.0.role"),
    ("/v1/completions", {"prompt": "the cat", "max_tokens": 0}, "max_tokens"),
    ("/v1/completions", {"prompt": "the cat", "max_tokens": 26}, "max_tokens"),
    ("/v1/completions", {"prompt": "the cat", "temperature": -0.5}, "temperature"),
    ("/v1/completions", {"prompt": "the cat", "top_p": 0}, "top_p"),
    ("/v1/completions", {"prompt": "the cat", "top_p": 1.5}, "top_p"),
    ("/v1/completions", {"prompt": "the cat " * 5}, "prompt"),
    ("/v1/completions", {"prompt": ""}, "prompt"),
    ("/v1/completions", {"prompt": ["a", "b"]}, "prompt"),
    ("/v1/completions", {"prompt": "the", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("/v1/completions", {"prompt": "the", "stop": [""]}, "stop"),
    ("/v1/completions", {"prompt": "the", "n": 3}, "n"),
    # strict types, as OpenAI's schema: a string or a boolean is not an integer, a string not a number
    ("/v1/completions", {"prompt": "the", "max_tokens": "5"}, "max_tokens"),
    ("/v1/completions", {"prompt": "the", "max_tokens": True}, "max_tokens"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": "5"}, "max_tokens"),
    ("/v1/completions", {"prompt": "the", "temperature": "0.5"}, "temperature"),
    ("/v1/completions", {"prompt": "the", "stream": "true"}, "stream"),
    ("/v1/completions", {"prompt": "the", "seed": 1.5}, "seed"),
    ("/v1/completions", {"prompt": "the", "model": None}, "model"),
    ("/v1/completions", {"prompt": "the", "model": 5}, "model"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "model": None}, "model"),
]


@pytest.mark.parametrize("path,body,param", BAD)
def test_bad_requests_get_400_naming_the_field(lm_url, path, body, param):
    r = httpx.post(f"{lm_url}{path}", json={"model": "lm", **body}, headers={"Authorization": f"Bearer {TOKEN}"},
                   trust_env=False)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param and error["message"]


@pytest.mark.parametrize("path,body", [("/v1/completions", {"prompt": "the cat"}),
                                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})])
def test_a_request_without_model_gets_400(lm_url, path, body):
    r = httpx.post(f"{lm_url}{path}", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "model" and "required" in r.json()["error"]["message"]


def test_bad_json_and_missing_token(lm_url):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{lm_url}/v1/completions", content=b"{not json", trust_env=False,
                   headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = httpx.post(f"{lm_url}/v1/completions", json={"prompt": "the"}, trust_env=False)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_chat_format_is_the_one_instruction_tuning_uses():
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert default_template(messages) == "System: be brief\nUser: hi\nAssistant: "


def test_cli_serves_a_run_with_a_token_and_stops_cleanly(lm_run):
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "zerotune", "serve", str(lm_run), "--port", "0", "--token", TOKEN,
                             "--max-wait-ms", "20"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", line).group(1)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=3,
                               http_client=httpx.Client(trust_env=False, timeout=60))
        out = client.completions.create(model="lm", prompt="the cat ", max_tokens=5, temperature=0)
        assert out.usage.completion_tokens == 5 and len(out.choices[0].text) == 5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_language_model_serves_on_pytorch_only(lm_run):
    from zerotune.errors import UserError

    with pytest.raises(UserError, match="PyTorch only"):
        load_served_model(lm_run, backend="onnx")
