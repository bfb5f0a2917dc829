"""Fuzzing the API: no request, valid or not, may get a 5xx.

Schemathesis generates requests from the server's own OpenAPI schema (conforming and
non-conforming); Hypothesis adds arbitrary JSON and bytes for /predict. Both hit a real server on
127.0.0.1 with a bounded number of examples: one serving an image model (arrays in), one serving a
text model (strings in, tokenised by the server).
"""

import json

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zerotune.serve import ServeOptions, create_app, running_server

TOKEN = "fuzz-token-123"


@pytest.fixture(scope="module", params=["image", "text"])
def fuzz_url(request):
    served = request.getfixturevalue("cnn_served" if request.param == "image" else "text_served")
    app = create_app(served, ServeOptions(token=TOKEN, max_body_bytes=64_000, max_examples=50))
    with running_server(app) as url:
        yield url


# Schemathesis' own pytest integration (from_fixture) does not run under pytest 9, so the test
# draws cases from each operation's strategy itself.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_fuzz_never_5xx(fuzz_url, mode):
    schema = schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {"GET /health", "GET /metadata", "POST /predict"}
    if mode == GenerationMode.NEGATIVE:  # the GET operations take no input to get wrong
        operations = [op for op in operations if op.method.upper() == "POST"]
    seen = []
    for op in operations:
        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case):
            # With and without the token, so both the authorised and the rejected paths are fuzzed.
            for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
                response = case.call(base_url=fuzz_url, headers=headers, timeout=30)
                seen.append(response.status_code)
                assert response.status_code < 500, (
                    f"{case.method} {case.path}: {response.status_code} {response.text[:300]}")

        check()
    assert 401 in seen and (200 in seen or mode == GenerationMode.NEGATIVE)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**30, 10**30)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=9) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=80,
)
# Finite in float32 yet far outside any training data: the model's outputs overflow (3e38 did, to a 500).
huge = (st.floats(1e30, 3.4e38) | st.floats(-3.4e38, -1e30) | st.sampled_from([3.0e38, -3.0e38, 3.4028234e38])
        | st.floats(1e38, 1e300))  # the last also past float32's range
near_valid = st.lists(st.lists(st.lists(st.floats(width=32) | st.integers(-300, 300) | huge, min_size=7, max_size=9),
                               min_size=7, max_size=9), min_size=1, max_size=2)
exact_shape = st.lists(st.lists(st.lists(huge | st.floats(-20, 20), min_size=8, max_size=8),
                                min_size=8, max_size=8), min_size=1, max_size=1)
texts = st.text(max_size=300) | st.lists(st.text(max_size=40), max_size=60)


@pytest.fixture(scope="module")
def http(fuzz_url):
    with httpx.Client(base_url=fuzz_url, trust_env=False, timeout=30,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(inputs=json_values | near_valid | texts)
def test_predict_fuzz_json(http, inputs):
    body = json.dumps({"inputs": inputs}).encode()  # NaN/Infinity as Python's json writes them
    r = http.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (200, 413, 422), r.text[:300]
    if r.status_code == 200:
        out = r.json()
        assert len(out["classes"]) == len(out["probabilities"]) == len(out["labels"]) >= 1


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(inputs=exact_shape, batch=st.booleans())
def test_predict_fuzz_huge_finite_floats(http, inputs, batch):
    r = http.post("/predict", json={"inputs": [inputs] if batch else inputs})
    assert r.status_code in (200, 422), r.text[:300]
    if r.status_code == 200:
        assert all(0 <= p <= 1 for row in r.json()["probabilities"] for p in row)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/plain", "", "a/b; x"]))
def test_predict_fuzz_bytes(http, raw, content_type):
    r = http.post("/predict", content=raw, headers={"content-type": content_type})
    assert 400 <= r.status_code < 500, r.text[:300]
