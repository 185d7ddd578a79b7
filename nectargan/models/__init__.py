"""Generator and discriminator networks for Pix2pix-style training."""

from nectargan.models.init import init_weights
from nectargan.models.patchgan import PatchGANDiscriminator, receptive_field
from nectargan.models.unet import UnetGenerator

__all__ = ["PatchGANDiscriminator", "UnetGenerator", "init_weights", "receptive_field"]
