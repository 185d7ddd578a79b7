"""PatchGAN discriminator conditioned on the (input, output) pair."""

from nectargan.models.patchgan.model import PatchGANDiscriminator, receptive_field

__all__ = ["PatchGANDiscriminator", "receptive_field"]
