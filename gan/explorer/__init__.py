"""The explorer: the DCGAN model (`model`), latent maths and rendering (`latent`), the model zoo
(`zoo`: pretrained, bundled, uploaded and Hub models behind one cached loader), the browser's ONNX
export of a generator (`export`) and GAN inversion, a photo's latent (`projection`)."""
