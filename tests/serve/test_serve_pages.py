"""The pages at / in a real headless Chromium (DevTools protocol over a pipe, `browser.py`): a chat with a
language-model run whose streamed answer is the API's own, behind --token too, and the prediction form
of a classifier. Skipped, with the reason, where chromium is not installed."""

import json

import httpx
import pytest

from zerotune.serve import ServeOptions, create_app, load_served_model, running_server

from .browser import CHROMIUM, Browser

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
TOKEN = "page-token-123"
# What the page sends and shows: each request to the chat API with the type of its answer, and the answer's
# text after each change of the log (the pieces of a stream that arrive together show as one change).
WATCH = """window.seen = []; window.sent = [];
new MutationObserver(() => { const a = document.querySelector('.assistant:last-child');
  if (a) seen.push(a.textContent); }).observe(document.getElementById('log'),
  {childList: true, subtree: true, characterData: true});
const pageFetch = window.fetch;
window.fetch = async (url, options) => { const r = await pageFetch(url, options);
  if (String(url).includes('chat/completions')) sent.push([JSON.parse(options.body), r.headers.get('content-type')]);
  return r; }; true"""


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def chat_served(chat_run):
    return load_served_model(chat_run)


def _ask(browser, text: str, temperature: str = "0") -> str:
    """Type a message into the chat page, send it, and return the answer it shows when done."""
    browser.js(f"document.getElementById('temperature').value = {json.dumps(temperature)}; "
               f"document.getElementById('prompt').value = {json.dumps(text)}; "
               "document.getElementById('send').click(); true")
    browser.wait("document.querySelector('.assistant:last-child')?.dataset.done === 'true'")
    return browser.js("document.querySelector('.assistant:last-child').textContent")


def test_chat_page_streams_the_answer_the_api_gives(browser, chat_served):
    with running_server(create_app(chat_served)) as url:
        browser.goto(url + "/")
        browser.wait("document.body.dataset.ready === 'true'")
        assert browser.js("document.getElementById('name').textContent") == "chat"
        assert "loss" in browser.js("document.getElementById('metrics').textContent")  # the run's metrics
        browser.js(WATCH)
        answer = _ask(browser, "a dog")
        api = httpx.post(url + "/v1/chat/completions", trust_env=False, timeout=60, json={
            "model": "chat", "messages": [{"role": "user", "content": "a dog"}], "temperature": 0}).json()
        seen, sent = browser.js("seen"), browser.js("sent")
    assert answer and answer == api["choices"][0]["message"]["content"]
    ((body, kind),) = sent  # one request, streamed: server-sent events
    assert body["stream"] is True and kind.startswith("text/event-stream") and body["temperature"] == 0
    assert body["messages"] == [{"role": "user", "content": "a dog"}] and "max_tokens" not in body
    assert seen and all(answer.startswith(s) for s in seen)  # the text only grew, piece by piece, to the answer
    assert browser.js("document.querySelectorAll('.user').length") == 1


def test_chat_page_behind_a_token(browser, chat_served):
    with running_server(create_app(chat_served, ServeOptions(token=TOKEN))) as url:
        browser.goto(url + "/")  # the page itself is open; what it shows needs the token
        browser.wait("!document.getElementById('auth').hidden")
        browser.js("document.getElementById('token').value = 'wrong-token-0'; "
                   "document.getElementById('use-token').click(); true")
        assert "refused" in browser.wait("document.getElementById('auth-message').className === 'error' && "
                                         "document.getElementById('auth-message').textContent")
        browser.js(f"document.getElementById('token').value = '{TOKEN}'; "
                   "document.getElementById('use-token').click(); true")
        browser.wait("document.body.dataset.ready === 'true'")
        answer = _ask(browser, "my friend")
        api = httpx.post(url + "/v1/chat/completions", trust_env=False, timeout=60,
                         headers={"Authorization": f"Bearer {TOKEN}"},
                         json={"model": "chat", "messages": [{"role": "user", "content": "my friend"}],
                               "temperature": 0}).json()
        assert answer == api["choices"][0]["message"]["content"]
        browser.js("sessionStorage.clear(); true")  # a new visit, from a link that carries the token in its
        browser.goto("about:blank")                 # fragment, which is never sent to the server
        browser.goto(url + f"/#token={TOKEN}")
        browser.wait("document.body.dataset.ready === 'true' && location.hash === ''")
        assert httpx.get(url + "/metadata", trust_env=False).status_code == 401


def test_predict_form_shows_the_model_class(browser, cnn_url, cnn_ref):
    browser.goto(cnn_url + "/")
    browser.wait("document.body.dataset.ready === 'true'")
    assert "accuracy" in browser.js("document.getElementById('metrics').textContent")
    example = json.dumps(cnn_ref.raw[7].tolist())
    browser.js(f"document.getElementById('inputs').value = {json.dumps(example)}; "
               "document.getElementById('predict').click(); true")
    browser.wait("document.getElementById('result').dataset.done === 'true'")
    top = browser.js("[...document.querySelectorAll('#result tr:first-child td')].map(td => td.textContent)")
    assert top[1] == cnn_ref.names[cnn_ref.classes[7]]
    assert abs(float(top[2]) - cnn_ref.probs[7].max()) < 1e-4
