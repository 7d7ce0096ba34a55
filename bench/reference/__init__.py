"""Reference programs the benchmarks compare against (faithful re-creations, run in the same process)."""
