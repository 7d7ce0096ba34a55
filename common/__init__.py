"""What both engines (gan/, style/) need without importing each other: the device picker and CPU
thread settings (`device`), ZeroGPU rules (`zerogpu`), and the pretrained VGG feature backbones
(`backbones`) that style transfer, the Train tab's quality metric and GAN inversion all use."""
