"""OpenMP's wait policy: chosen before torch loads, from every entry point; a value the user set wins."""

import json
import os
import subprocess
import sys

import pytest

# Records OMP_WAIT_POLICY at the moment torch is first imported (OpenMP reads it then), entering zerotune
# the way argv[1] says.
HARNESS = """
import importlib, importlib.abc, json, os, runpy, sys
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("OMP_WAIT_POLICY", "unset"))
sys.meta_path.insert(0, Watch())
try:
    if sys.argv[1] == "-m":  # python -m zerotune --version
        sys.argv = ["zerotune", "--version"]
        runpy.run_module("zerotune", run_name="__main__", alter_sys=True)
    else:
        importlib.import_module(sys.argv[1])
except SystemExit:
    pass
import torch
print(json.dumps({"at_torch_import": seen[0], "child": os.environ.get("OMP_WAIT_POLICY", "unset")}))
"""


@pytest.fixture
def busy_machine():
    """Two processes that keep running, so that the machine is busy whatever else it does."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for p in procs:
        p.kill()
        p.wait()


def policy_seen(entry: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", HARNESS, entry], capture_output=True, text=True, timeout=300,
                         env={**clean, **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("entry", ["zerotune", "-m"])
def test_busy_machine_gets_a_passive_wait_policy_before_torch_loads(busy_machine, entry):
    assert policy_seen(entry) == {"at_torch_import": "PASSIVE", "child": "PASSIVE"}


def test_the_users_wait_policy_wins(busy_machine):
    assert policy_seen("zerotune.cli.main", OMP_WAIT_POLICY="ACTIVE") == {"at_torch_import": "ACTIVE", "child": "ACTIVE"}


@pytest.mark.parametrize("others, user, expected", [
    (0, None, None),  # idle: OpenMP's own policy, the fastest there
    (1, None, "PASSIVE"),
    (None, None, "PASSIVE"),  # load unknown (no /proc): the choice that cannot go badly wrong
    (3, "active", "active"),
    (0, "PASSIVE", "PASSIVE"),
])
def test_choose_wait_policy(monkeypatch, others, user, expected):
    from zerotune.compute import omp

    monkeypatch.setattr(omp, "others_running", lambda: others)
    environ = {} if user is None else {"OMP_WAIT_POLICY": user}
    omp.choose_wait_policy(environ)
    assert environ.get("OMP_WAIT_POLICY") == expected


def test_others_running_reads_the_machine():
    from zerotune.compute import omp

    assert omp.others_running() is None or omp.others_running() >= 0
