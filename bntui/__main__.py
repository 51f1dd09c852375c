"""Allow ``python -m bntui``."""

import sys

from bntui.cli import main

if __name__ == "__main__":  # guarded: the TUI's TensorFlow process re-imports this module
    sys.exit(main())
