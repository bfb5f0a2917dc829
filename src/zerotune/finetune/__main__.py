"""``python -m zerotune.finetune ...``: the same as ``zerotune finetune ...``."""

import sys

from ..cli.main import run_subcommand

if __name__ == "__main__":
    sys.exit(run_subcommand("finetune"))
