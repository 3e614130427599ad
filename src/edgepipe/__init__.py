"""edgepipe: take a trained neural network to the edge.

The public Python API. Everything here is re-exported from the modules that own it.
"""

from edgepipe.errors import EdgepipeError

__version__ = "0.1.0"

__all__ = ["EdgepipeError", "__version__"]
