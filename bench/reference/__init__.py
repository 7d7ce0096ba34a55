"""Faithful re-creations of the programs users would otherwise run, written by us for the benchmarks."""
