"""Neural style-transfer engine (Gatys et al.): losses, the optimisation loop, colour handling. No gradio.
The VGG backbones it optimises against live in common.backbones (the GAN engine uses them too)."""
