"""Pretrained weights: the manifest, and the fetch / verify / convert code (`python -m weights fetch`)."""
