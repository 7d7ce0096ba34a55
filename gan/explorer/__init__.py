"""The explorer: the DCGAN model (`model`), latent maths and rendering (`latent`), and the model zoo
(`zoo`: pretrained, bundled, uploaded and Hub models behind one cached loader)."""
