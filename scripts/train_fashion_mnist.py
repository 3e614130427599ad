"""Train the bundled Fashion-MNIST CNN: ``python scripts/train_fashion_mnist.py [--out DIR]``.

Needs Debian's ``dataset-fashion-mnist`` package (``builtin:fashion-mnist``); runs on two CPU
threads by default (``--threads N`` to change). Same as
``python -m edgepipe.zoo.train --models fashion-mnist-cnn``: it writes
``fashion-mnist-cnn.safetensors`` and ``fashion-mnist-cnn.json`` into src/edgepipe/zoo/.
"""

import sys

from edgepipe.zoo.train import main

if __name__ == "__main__":
    sys.exit(main(["--models", "fashion-mnist-cnn", *sys.argv[1:]]))
