"""The runners behind :class:`edgepipe.profiling.runner.Runner`: ``local`` (here, CUDA),
``ssh``, ``phone`` (adb: the agent or benchmark_model, over the client in ``adb``) and
``estimated`` (the roofline estimator, for a device not reached)."""
