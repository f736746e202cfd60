"""Benchmarks as code; results land in bench/results/*.json. Run: python -m bench [name]."""
