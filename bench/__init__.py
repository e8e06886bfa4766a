"""Benchmarks for the SMSC client: `python -m bench` runs them all and prints the figures."""
