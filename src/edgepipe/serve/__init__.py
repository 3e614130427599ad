"""Serving a split model's tail on the Open Inference Protocol (KServe v2), REST and gRPC.

:mod:`edgepipe.serve.tail` loads the tail and checks requests against it;
:mod:`edgepipe.serve.server` puts kserve's v2 data plane behind a token, size and time
limits on 127.0.0.1; :mod:`edgepipe.serve.client` is the device side.
"""

import sys


def import_kserve() -> None:
    """Import kserve with an empty command line: its model_server module parses
    ``sys.argv`` at import (argparse, prefixes allowed), which would read edgepipe's own
    options as kserve's."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        import kserve  # noqa: F401
    finally:
        sys.argv = saved
