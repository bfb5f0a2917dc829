"""``python -m zerotune.serve TARGET ...``: the serve subcommand on its own."""

import sys

from ..cli.serve import main

sys.exit(main())
