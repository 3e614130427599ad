"""Measuring artifacts: the profile verb, the runners that reach a device, and the agent.

:func:`~edgepipe.profiling.target.resolve_target` turns a target name (and ``--host``) into a
:class:`~edgepipe.profiling.target.Target` once: its catalog entry, how it is reached and its
runner. Every runner (here, CUDA, ssh, adb, the estimator) follows one protocol,
:class:`~edgepipe.profiling.runner.Runner`; :mod:`.profile` calls it without asking which
kind it is. ``agent/`` is shipped alone to devices and imports nothing from edgepipe.
Device knowledge (catalog, estimator, fit) is :mod:`edgepipe.devices`.
"""
