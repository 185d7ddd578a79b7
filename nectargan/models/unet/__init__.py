"""U-Net generator (pix2pix's default)."""

from nectargan.models.unet.model import BLOCK_TYPES, UPSAMPLE_MODES, UnetGenerator

__all__ = ["BLOCK_TYPES", "UPSAMPLE_MODES", "UnetGenerator"]
