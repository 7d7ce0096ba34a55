"""Neural style-transfer engine (Gatys et al.): VGG features, losses, the optimisation loop. No gradio."""
