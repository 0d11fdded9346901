"""Benchmarks of the heavy workloads: the project's own code paths side by side with a plain
single-process *baseline* and the tightest *floor* kernel, on the same simulated input and cores.

`python -m benchmarks` runs them all and writes `benchmarks/RESULTS.md`."""
