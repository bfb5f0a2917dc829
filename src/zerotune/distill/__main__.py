"""``python -m zerotune.distill ...``: the same as ``zerotune distill ...``."""

import sys

from ..cli.distill import main

if __name__ == "__main__":
    sys.exit(main())
