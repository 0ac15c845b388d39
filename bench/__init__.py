"""Benchmarks of LinkDesk on its embedded default (see BENCHMARKS.md)."""
