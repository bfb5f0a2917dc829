"""``python -m zerotune``: the command line, and each worker process of ``--nproc`` and torchrun."""

from .cli.main import main
from .distributed.launch import end_process

end_process(main())
