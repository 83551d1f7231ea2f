"""Benchmarks (``thanthien bench NAME|all``): each measures a figure of the platform and a
baseline in the same run, and reports their ratio with the machine it ran on."""
