"""Split computing: cut a torch model, train a bottleneck at the cut, export head and tail
(:func:`edgepipe.split.api.split_model`)."""


