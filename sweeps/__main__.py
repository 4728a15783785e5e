"""``python -m sweeps <sweep dir> [--table <name>]``: the same as ``python -m sweeps.aggregate``."""

import sys

from sweeps.aggregate import main

if __name__ == "__main__":
    sys.exit(main())
