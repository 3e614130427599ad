"""Split computing: cut a torch model, train a bottleneck at the cut, export head and tail
(:func:`edgepipe.split.api.split_model`)."""

from edgepipe._verb import make_verb

make_verb(__name__)  # edgepipe.split(...) is the verb of edgepipe.api (see edgepipe._verb)
