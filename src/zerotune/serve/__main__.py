"""``python -m zerotune.serve TARGET ...``: the serve subcommand on its own."""

import sys

from .cli import main

sys.exit(main())
