"""Gradio tabs: one module per tab. The only package that imports gradio (besides app.py)."""
