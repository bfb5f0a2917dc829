import subprocess
import sys

CHILD = """
import sys
import torch
from zerotune.train.env import compile_module, set_deterministic
set_deterministic(False)
print(torch.are_deterministic_algorithms_enabled())
set_deterministic(True)
print(torch.are_deterministic_algorithms_enabled())
set_deterministic(False)
print(torch.are_deterministic_algorithms_enabled(), "torch._inductor" in sys.modules)
set_deterministic(True)
compile_module(torch.nn.Linear(2, 2))
import torch._inductor.config as inductor
print(inductor.deterministic)
set_deterministic(False)  # with the compiler loaded, torch's own call sets both flags
print(torch.are_deterministic_algorithms_enabled(), inductor.deterministic)
"""


def test_neither_mode_costs_a_compiler_import_and_a_compiled_model_follows_the_mode():
    # torch.use_deterministic_algorithms imports torch._inductor (2.4 s of CPU at every run's start) for
    # the compiler's flag, which only torch.compile reads.
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "False", "False", "True", "False", "False"]
