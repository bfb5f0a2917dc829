"""``python -m zerotune.finetune ...``: the same as ``zerotune finetune ...``."""

import sys

from ..cli.finetune import main

if __name__ == "__main__":
    sys.exit(main())
