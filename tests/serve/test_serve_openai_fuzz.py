"""Fuzzing the OpenAI-compatible API of a language-model run: no request, valid or not, may get a 5xx.

As test_serve_fuzz.py: Schemathesis draws conforming and non-conforming requests from the
server's OpenAPI schema, Hypothesis adds arbitrary JSON and bytes, against a real server on 127.0.0.1.
"""

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from zerotune.serve import ServeOptions, create_app, load_served_model, running_server

TOKEN = "fuzz-token-123"
ROUTES = {"GET /health", "GET /metadata", "GET /v1/models", "GET /v1/models/{model}", "POST /v1/completions",
          "POST /v1/chat/completions", "GET /tokenizer_info", "POST /tokenize", "POST /detokenize"}


@pytest.fixture(scope="module")
def fuzz_url(lm_run):
    app = create_app(load_served_model(lm_run), ServeOptions(token=TOKEN, max_body_bytes=64_000))
    with running_server(app) as url:
        yield url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_fuzz_never_5xx(fuzz_url, mode):
    schema = schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == ROUTES
    if mode == GenerationMode.NEGATIVE:
        operations = [op for op in operations if op.method.upper() == "POST"]
    seen = []
    for op in operations:
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case):
            for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
                response = case.call(base_url=fuzz_url, headers=headers, timeout=30)
                seen.append(response.status_code)
                assert response.status_code < 500, (
                    f"{case.method} {case.path}: {response.status_code} {response.text[:300]}")
                if response.status_code >= 400 and case.path.startswith("/v1"):
                    assert set(response.json()["error"]) == {"message", "type", "param", "code"}

        check()
    assert 401 in seen and (200 in seen or mode == GenerationMode.NEGATIVE)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**30, 10**30)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
fields = st.fixed_dictionaries({}, optional={
    "prompt": json_values | st.text(alphabet="the catdogmsn .", max_size=40)
    | st.lists(st.integers(-2, 30), max_size=40),
    "messages": json_values | st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "bot", 3]),
                                                              "content": json_values}), max_size=3),
    "max_tokens": json_values | st.integers(-3, 40), "temperature": json_values | st.floats(-1, 3),
    "top_p": json_values | st.floats(-0.5, 1.5), "stop": json_values, "n": json_values, "stream": json_values,
    "seed": json_values, "model": st.sampled_from(["lm", "other", None, 5]), "stream_options": json_values,
    "echo": json_values | st.booleans(), "logprobs": json_values | st.integers(-1, 6)})


@pytest.fixture(scope="module")
def http(fuzz_url):
    with httpx.Client(base_url=fuzz_url, trust_env=False, timeout=30,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=fields, chat=st.booleans())
def test_generation_fuzz_json(http, body, chat):
    r = http.post("/v1/chat/completions" if chat else "/v1/completions", content=json.dumps(body).encode(),
                  headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 404), r.text[:300]
    if r.status_code != 200:
        assert r.json()["error"]["message"]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_generation_fuzz_bytes(http, raw, content_type):
    r = http.post("/v1/completions", content=raw, headers={"content-type": content_type})
    assert 400 <= r.status_code < 500, r.text[:300]
