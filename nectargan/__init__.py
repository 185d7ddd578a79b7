"""NectarGAN: train Pix2pix-style conditional GANs headlessly, watch them learn in Visdom."""

__version__ = "0.1.0"
