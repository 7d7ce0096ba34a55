"""Ingest: safe reading of folders, files and zips (`sources`), decoding into one uint8 tensor
(`data`), and streaming shards for data sets too large for memory (`streaming`)."""
