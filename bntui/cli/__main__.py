"""``python -m bntui.cli``: the same as the ``bntui`` command."""

import sys

from bntui.cli.main import main

sys.exit(main())
