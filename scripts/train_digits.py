"""Train the bundled digits models: ``python scripts/train_digits.py [--out DIR]``.

The training lives in :mod:`edgepipe.zoo.train` (also ``python -m edgepipe.zoo.train``), so
an installed edgepipe can reproduce its own weights; this script is the repository's handle.
"""

import sys

from edgepipe.zoo.train import main

if __name__ == "__main__":
    sys.exit(main())
