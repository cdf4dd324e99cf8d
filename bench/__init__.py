"""Benchmarks: `make bench` (see docs/benchmarks.md). Never part of `make test`."""
