"""``python -m zerotune.export RUN ...``: the export subcommand on its own."""

import sys

from ..cli.export import main

sys.exit(main())
