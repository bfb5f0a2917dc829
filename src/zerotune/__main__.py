"""``python -m zerotune``: the command line, and each worker process of ``--nproc`` and torchrun."""

from .distributed.parent import end_with_launcher

end_with_launcher()  # a worker of --nproc: die with the launcher, even one killed with -9

from .cli.main import main  # noqa: E402
from .distributed.launch import end_process  # noqa: E402

try:
    code = main()
except SystemExit as e:  # argparse's own exit, or a rank stopping quietly because rank 0 failed
    code = e.code
end_process(code)
