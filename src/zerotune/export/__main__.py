"""``python -m zerotune.export RUN ...``: the export subcommand on its own."""

import sys

from .cli import main

sys.exit(main())
