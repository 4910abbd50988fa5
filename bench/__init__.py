"""Benchmarks (not tests): each prints its figures and the ratio to its baseline."""
