"""The real TensorBoard server on our runs: its HTTP data API, a killed run, and a headless browser."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zerotune.errors import UserError
from zerotune.track.board import board_command, check_port, http_get, start_board

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _truncate_mid_record(events: Path) -> None:
    data = events.read_bytes()
    offsets, pos = [], 0
    while pos + 12 <= len(data):
        offsets.append(pos)
        pos += 16 + struct.unpack("<Q", data[pos:pos + 8])[0]
    events.write_bytes(data[:offsets[len(offsets) // 2] + 20])


@pytest.fixture(scope="module")
def board_logdir(logdir, tmp_path_factory) -> Path:
    """cls-a as trained, and a copy of it whose event file was cut in the middle of a record."""
    root = tmp_path_factory.mktemp("board")
    for name in ("cls-a", "killed"):
        shutil.copytree(logdir / "cls-a", root / name, ignore=shutil.ignore_patterns("checkpoints"))
    _truncate_mid_record(sorted((root / "killed").glob("*tfevents*"))[0])  # training's file, not the doctor's
    return root


@pytest.fixture(scope="module")
def board(board_logdir):
    b = start_board(board_logdir, port=0)
    yield b
    b.stop()


def get_json(board, path: str, timeout: float = 60.0, until=lambda r: True):
    """GET a data-API path, retrying until ``until(result)`` holds (the server loads in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        result = json.loads(http_get(board.url + path))
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_board_serves_scalars_histograms_images(board):
    runs = get_json(board, "data/runs", until=lambda r: {"cls-a", "killed"} <= set(r))
    assert {"cls-a", "killed"} <= set(runs)
    scalars = get_json(board, "data/plugin/scalars/tags", until=lambda r: "val/accuracy" in r.get("cls-a", {}))
    assert {"train/loss", "val/accuracy", "layers/grad_norm/_all", "perf/step_time_ms"} <= set(scalars["cls-a"])
    assert "train/loss" in scalars["killed"]  # the run cut mid-record is served too
    hist = get_json(board, "data/plugin/histograms/tags", until=lambda r: "cls-a" in r)
    assert {"weights/head.weight", "grads/head.weight"} <= set(hist["cls-a"])
    images = get_json(board, "data/plugin/images/tags", until=lambda r: "cls-a" in r)
    assert {"val/confusion_matrix", "val/worst_misclassified", "inputs/samples"} <= set(images["cls-a"])

    q = urllib.parse.urlencode({"run": "cls-a", "tag": "train/loss"})
    points = get_json(board, f"data/plugin/scalars/scalars?{q}")
    assert len(points) == 15 and points[0][1] == 1  # [wall_time, step, value] for every step
    q = urllib.parse.urlencode({"run": "cls-a", "tag": "val/confusion_matrix", "sample": 0})
    entries = get_json(board, f"data/plugin/images/images?{q}")
    png = http_get(board.url + "data/plugin/images/individualImage?" + entries[-1]["query"])
    assert png.startswith(b"\x89PNG")


def test_board_hparams_have_metrics(board):
    get_json(board, "data/runs", until=lambda r: "cls-a" in r)
    body = {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_RUNNING", "STATUS_UNKNOWN"],
            "colParams": [], "startIndex": 0, "sliceSize": 10}
    req = urllib.request.Request(board.url + "data/plugin/hparams/session_groups", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    groups = json.loads(opener.open(req, timeout=30).read())["sessionGroups"]
    group = next(g for g in groups if g["name"] == "cls-a")
    metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
    assert 0 <= metrics["val/accuracy"] <= 1 and metrics["run/seconds"] > 0
    assert group["hparams"]["model.name"] == "cnn"


def test_port_in_use_and_no_runs(board_logdir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UserError, match="cannot serve"):
            start_board(board_logdir, port=port)
    with pytest.raises(UserError, match="no runs"):
        board_command(tmp_path, port=0)


def test_stop_frees_the_port(board_logdir):
    b = start_board(board_logdir, port=0)
    port = int(b.url.rstrip("/").rsplit(":", 1)[1])
    b.stop()
    assert b.process.poll() is not None
    check_port("127.0.0.1", port)  # would raise if something still listened


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from Linux's /proc")
def test_sigterm_stops_the_tensorboard_child(board_logdir):
    proc = subprocess.Popen([sys.executable, "-m", "zerotune", "board", str(board_logdir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children = []
    try:
        line = proc.stdout.readline()  # printed once TensorBoard answers
        port = int(line.rsplit(":", 1)[1].split("/")[0]) if " at http://127.0.0.1:" in line else None
        assert port, line + proc.stderr.read()
        children = _children(proc.pid)
        assert len(children) == 1
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        with pytest.raises(ProcessLookupError):  # stopped and reaped, not orphaned
            os.kill(children[0], 0)
        check_port("127.0.0.1", port)  # would raise if TensorBoard still listened
    finally:  # leave nothing running, whatever failed
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pid in children:  # an orphaned TensorBoard
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_scalars_page_screenshot(board, tmp_path):
    get_json(board, "data/plugin/scalars/tags", until=lambda r: "cls-a" in r)
    shot = tmp_path / "board_scalars.png"
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1400,1000",
               "--virtual-time-budget=20000", f"--screenshot={shot}",
               board.url + "#scalars&tagFilter=" + urllib.parse.quote("^(train|val)/(loss|accuracy)$")]
        subprocess.run(cmd, capture_output=True, timeout=180, check=False)
    assert shot.exists()
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape == (1000, 1400, 3)
    orange = (abs(img[..., 0].astype(int) - 245) < 12) & (abs(img[..., 1].astype(int) - 124) < 12) & (img[..., 2] < 30)
    assert orange.mean() > 0.02  # TensorBoard's orange header bar: the app rendered, not an error page
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # charts and text, not a blank page
    if os.environ.get("ZEROTUNE_UPDATE_DOC_IMAGES"):
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, ROOT / "docs" / "img" / "board_scalars.png")
