"""``python -m zerotune.scratch linreg ...``: the same as ``zerotune scratch linreg ...``."""

import sys

from ..cli.scratch import main

sys.exit(main())
