"""Benchmarks and load tests: scripts that print their numbers (see BENCHMARKS.md)."""
