"""Benchmarks of Gavel and the bare baselines they are measured against (see bench/RESULTS.md)."""
