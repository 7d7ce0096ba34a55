"""DCGAN engine: models, latent-space tools, data ingest, training. Imports no gradio; no side effects."""
