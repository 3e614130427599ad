"""Device knowledge: what a device is, never how it is measured.

The catalog (one YAML file per device under ``catalog/``, validated by :mod:`.schema` into a
:class:`~edgepipe.devices.schema.DeviceEntry`), this machine's own entry filled in at run time
(:mod:`.host`), the roofline estimator (:mod:`.estimator`) and microcontroller fit with TFLite
Micro (:mod:`.fit`, :mod:`.tflm`). Measuring (the profile verb, the agent, the runners that
reach a device) is :mod:`edgepipe.profiling`, which imports this package, never the reverse.
"""
