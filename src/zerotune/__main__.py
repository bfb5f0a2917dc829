"""``python -m zerotune``: the command line, and each worker process of ``--nproc`` and torchrun."""

from .cli.main import main
from .distributed.launch import end_process

try:
    code = main()
except SystemExit as e:  # argparse's own exit, or a rank stopping quietly because rank 0 failed
    code = e.code
end_process(code)
