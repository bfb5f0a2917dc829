import subprocess
import sys

CHILD = """
import sys
import torch
from zerotune.train.env import set_deterministic
set_deterministic(False)
print("torch._inductor" in sys.modules, torch.are_deterministic_algorithms_enabled())
set_deterministic(True)
print(torch.are_deterministic_algorithms_enabled())
set_deterministic(False)
print(torch.are_deterministic_algorithms_enabled())
"""


def test_non_deterministic_default_costs_no_compiler_import_and_both_modes_still_switch():
    # torch.use_deterministic_algorithms imports torch._inductor (seconds at every run's start);
    # the default mode is torch's own, so nothing needs to be called for it.
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True", "False"]
