"""A bounded load test on loopback, graceful shutdown of a real server process, the CLI and the
client example."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from zerotune.serve import ServeOptions, create_app, running_server
from zerotune.cli.serve import TOKEN_ENV, add_parser, main
from zerotune.serve.loadgen import _read_response, _request, run_load

ROOT = Path(__file__).resolve().parents[2]
CLIENTS, REQUESTS = 16, 15


def test_load_concurrent_clients_no_errors(cnn_served, cnn_ref):
    app = create_app(cnn_served, ServeOptions(max_batch=64, max_wait_ms=2))
    payloads = [{"inputs": x.tolist()} for x in cnn_ref.raw[:32]]
    with running_server(app) as url:
        r = run_load(url + "/predict", payloads, clients=CLIENTS, requests_per_client=REQUESTS, timeout=60)
    print(f"\nload test: {r.summary()}")
    assert r.failures == [] and r.statuses == {200: CLIENTS * REQUESTS} and r.errors == 0
    assert len(r.latencies_ms) == CLIENTS * REQUESTS and r.throughput > 0
    assert 0 < r.percentile(50) <= r.percentile(99)
    b = app.state.batcher
    assert b.examples == CLIENTS * REQUESTS
    assert b.batches < b.examples  # concurrent requests did share model calls


def test_load_generator_counts_errors(cnn_served):
    with running_server(create_app(cnn_served, ServeOptions(token="a-long-token"))) as url:
        r = run_load(url + "/predict", [{"inputs": [1, 2, 3]}], clients=3, requests_per_client=4)
    assert r.statuses == {401: 12} and r.errors == 12 and r.ok == 0


def start(args: list[str], env=None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "zerotune.serve", *args, "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    line = proc.stdout.readline()
    m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
    assert m, line + proc.stdout.read()
    url = m.group(1)
    for _ in range(200):
        try:
            if httpx.get(url + "/health", trust_env=False).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not come up")


def test_graceful_shutdown_on_sigterm(cnn_onnx, cnn_ref):
    env = {**os.environ, TOKEN_ENV: "token-from-env"}
    proc, url = start([str(cnn_onnx)], env)
    try:
        assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        headers = {"Authorization": "Bearer token-from-env"}
        assert httpx.post(url + "/predict", json={"inputs": cnn_ref.raw[:3].tolist()}, headers=headers,
                          trust_env=False).json()["classes"] == cnn_ref.classes[:3].tolist()
        assert httpx.post(url + "/predict", json={"inputs": cnn_ref.raw[:3].tolist()},
                          trust_env=False).status_code == 401
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0  # a graceful shutdown is a normal exit, not death by signal
    assert "answered 3 examples in 1 model calls; stopped" in out
    assert "Application shutdown complete" in out


def _client_until_refused(port: int, request: bytes, keep_alive: bool, outcomes: Counter):
    """A client sending `request` until the server refuses it; a sent request that gets no answer is "lost"."""

    async def run():
        reader = writer = None
        while True:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    outcomes["refused"] += 1  # the server had stopped listening: nothing was sent
                    return
            try:
                writer.write(request)
                await writer.drain()
                status, _, keep = await _read_response(reader)
            except (OSError, ConnectionError, asyncio.IncompleteReadError):
                outcomes["lost"] += 1
                return
            outcomes[status] += 1
            if not (keep and keep_alive):
                writer.close()
                reader = writer = None

    return run()


def test_sigterm_under_load_answers_every_request_sent_to_an_onnx_file(cnn_onnx, cnn_ref):
    # Half the clients reuse their connection, half open one per request: at the signal, some have a
    # request unread in the server's socket, some are queued on the listening socket, request sent.
    proc, url = start([str(cnn_onnx)])
    port = int(url.rsplit(":", 1)[1])
    request = _request("127.0.0.1", port, "/predict", json.dumps({"inputs": cnn_ref.raw[:2].tolist()}).encode(), None)
    outcomes = Counter()

    async def load():
        clients = [asyncio.create_task(_client_until_refused(port, request, i % 2 == 0, outcomes)) for i in range(32)]
        while outcomes[200] < 100:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*clients), 60)

    try:
        asyncio.run(load())
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert outcomes["lost"] == 0, dict(outcomes)
    assert outcomes["refused"] == 32 and set(outcomes) == {200, "refused"}, dict(outcomes)
    assert proc.returncode == 0, out
    assert f"answered {2 * outcomes[200]} examples" in out  # every answer the clients got, and no other


def test_sigterm_finishes_a_half_read_request_then_exits_0(cnn_onnx, cnn_ref):
    proc, url = start([str(cnn_onnx)])
    watchdog = threading.Timer(120, proc.kill)  # a hung server fails the test instead of hanging it
    watchdog.start()
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"inputs": cnn_ref.raw[:2].tolist()}).encode()
    half = len(body) // 2
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:half])
            assert conn.recv(64).startswith(b"HTTP/1.1 100 Continue")  # the app is now reading the body
            proc.send_signal(signal.SIGTERM)
            for line in proc.stdout:  # the server stops accepting but holds this connection open
                if "Waiting for connections to close" in line:
                    break
            conn.sendall(body[half:])
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
        out = proc.stdout.read()
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response[:300]
    assert json.loads(payload)["classes"] == cnn_ref.classes[:2].tolist()
    assert proc.returncode == 0, out
    assert "answered 2 examples in 1 model calls; stopped" in out
    with socket.socket() as s:  # nothing listens on the port any more (SO_REUSEADDR: closed connections may linger)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_cli_parser_defaults_and_errors(tmp_path, capsys):
    import argparse

    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    a = p.parse_args(["serve", "runs/x"])
    assert (a.host, a.port, a.backend, a.no_batching, a.token) == ("127.0.0.1", 8000, "auto", False, None)
    assert main([str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path), "--token", "short"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert main([str(tmp_path), "--port", "70000"]) == 2
    assert "port must be between 0 and 65535" in capsys.readouterr().err


def test_client_example(cnn_url):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "client.py"), cnn_url], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "model cnn" in out.stdout and "predicted" in out.stdout
