"""Allow ``python -m bntui``."""

import sys

from bntui.cli import main

sys.exit(main())
