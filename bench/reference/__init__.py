"""Faithful re-creations of the reference programs that bench/ compares against."""
