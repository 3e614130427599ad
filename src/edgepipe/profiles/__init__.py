"""Measuring artifacts: latency, memory and energy, the Profile schema and the device agent.

profiles/ measures and knows nothing of how a device is reached (that is targets/).
"""
