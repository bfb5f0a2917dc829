"""A load generator: N concurrent clients on keep-alive connections, each sending a fixed number of
requests, with per-request latency.

It speaks just enough HTTP/1.1 over asyncio streams to POST JSON and read a Content-Length
response. A full client library costs several times more CPU per request, and on a small machine
the client would then measure itself rather than the server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


@dataclass
class LoadResult:
    clients: int
    requests: int  # sent
    ok: int  # answered 200
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # connection-level errors

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def throughput(self) -> float:
        """Requests answered with 200 per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> str:
        return (f"{self.clients} clients, {self.requests} requests: {self.throughput:.0f} req/s, "
                f"p50 {self.percentile(50):.2f} ms, p99 {self.percentile(99):.2f} ms, errors {self.errors}")


def _request(host: str, port: int, path: str, body: bytes, token: str | None) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
            f"Content-Length: {len(body)}"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server keeps the connection open."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length, keep = None, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    if length is None:
        raise ConnectionError("response without Content-Length")
    return status, await reader.readexactly(length), keep


async def _client(host, port, requests: list[bytes], result: LoadResult, statuses: Counter) -> None:
    reader = writer = None
    try:
        for req in requests:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            t0 = time.perf_counter()
            writer.write(req)
            await writer.drain()
            status, _, keep = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - t0) * 1e3)
            statuses[status] += 1
            if not keep:
                writer.close()
                reader = writer = None
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
        result.failures.append(f"{type(e).__name__}: {e}")
    finally:
        if writer is not None:
            writer.close()


async def run_load_async(url: str, payloads: list[dict], *, clients: int = 32, requests_per_client: int = 50,
                         token: str | None = None, timeout: float = 120.0) -> LoadResult:
    """Send ``clients * requests_per_client`` POSTs to ``url``, ``clients`` at a time.

    Args:
        url: e.g. ``http://127.0.0.1:8000/predict``.
        payloads: JSON bodies; client i sends them in turn, starting at payload i.
        clients: concurrent connections.
        requests_per_client: requests each client sends, one after the other.
        token: bearer token, if the server wants one.
        timeout: seconds after which the run is abandoned (clients still waiting count as errors).
    """
    parts = urlsplit(url)
    host, port, path = parts.hostname, parts.port or 80, parts.path or "/"
    bodies = [_request(host, port, path, json.dumps(p).encode(), token) for p in payloads]
    result = LoadResult(clients, clients * requests_per_client, 0, 0.0)
    statuses: Counter = Counter()
    plans = [[bodies[(c + i) % len(bodies)] for i in range(requests_per_client)] for c in range(clients)]
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(_client(host, port, plan, result, statuses)) for plan in plans]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    if pending:
        result.failures.append(f"{len(pending)} clients still waiting after {timeout} s")
    result.seconds = time.perf_counter() - t0
    result.statuses = dict(statuses)
    result.ok = statuses.get(200, 0)
    return result


def run_load(url: str, payloads: list[dict], **kwargs) -> LoadResult:
    """Blocking form of ``run_load_async`` (same arguments)."""
    return asyncio.run(run_load_async(url, payloads, **kwargs))
