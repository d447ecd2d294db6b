"""Benchmarks (`make bench`): figures are written to docs/benchmarks.md, never asserted in tests."""
