"""DCGAN engine in three parts: `gan.explorer` (model, latent maths, rendering, zoo), `gan.ingest`
(safe reading of uploads, streaming shards) and `gan.train` (config, trainer, losses, checkpoints, CLI).
Imports no gradio; importing it has no side effects."""
