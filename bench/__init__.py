"""Benchmarks: our code against faithful re-creations of the reference programs, same process."""
