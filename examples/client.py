"""Call a `zerotune serve` server with nothing but the standard library.

    zerotune serve runs/cnn                          # in one terminal
    python examples/client.py http://127.0.0.1:8000  # in another
    python examples/client.py URL --inputs batch.json --token "$ZEROTUNE_SERVE_TOKEN"
    python examples/client.py URL --text "the food was great" --text "awful service"   # a text model

It reads /metadata to learn what the model takes, then sends either the examples in --inputs (a
JSON file holding one example or a list of them, in raw units; strings for a text model), the
--text strings, or, without either, one example made of the training mean of every feature (a
valid input for any array model; a text model gets a short sentence), and prints the predictions.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request


def call(url: str, token: str | None = None, body: dict | None = None) -> dict:
    """GET (no body) or POST JSON to ``url`` and return the decoded JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 4xx answers carry a JSON "detail" saying what was wrong
        sys.exit(f"{e.code}: {e.read().decode()}")


def mean_example(meta: dict) -> list:
    """One input of the model's shape whose values are the training means."""
    shape, mean = meta["input"]["shape"], meta["input"]["normalisation"]["mean"] or [0.0]
    if len(shape) == 3:  # images: one mean per channel
        c, h, w = shape
        return [[[mean[i if len(mean) == c else 0]] * w for _ in range(h)] for i in range(c)]
    return [mean[i] if len(mean) == shape[0] else 0.0 for i in range(shape[0])]


def main() -> None:
    p = argparse.ArgumentParser(description="Send inputs to a zerotune server and print its predictions.")
    p.add_argument("url", help="server base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--inputs", help="JSON file with one example or a list of examples (raw units, or strings)")
    p.add_argument("--text", action="append", help="a text to classify (text models; may be repeated)")
    p.add_argument("--token", help="bearer token, if the server was started with one")
    a = p.parse_args()
    base = a.url.rstrip("/")

    meta = call(f"{base}/metadata", a.token)
    text = meta["input"]["type"] == "text"
    takes = "text" if text else f"input shape {meta['input']['shape']}"
    print(f"model {meta['model']['name']} ({meta['model']['backend']}, version {meta['version']['model']}), "
          f"{takes}, task {meta['task']}")
    if a.inputs:
        with open(a.inputs) as f:
            inputs = json.load(f)
    elif a.text:
        inputs = a.text
    else:
        inputs = "this is a short example sentence" if text else mean_example(meta)
    out = call(f"{base}/predict", a.token, {"inputs": inputs})
    if "values" in out:
        for i, v in enumerate(out["values"]):
            print(f"example {i}: predicted value {v:.4f}")
        return
    for i, (label, probs) in enumerate(zip(out["labels"], out["probabilities"])):
        print(f"example {i}: predicted {label!r} with probability {max(probs):.3f}")


if __name__ == "__main__":
    main()
