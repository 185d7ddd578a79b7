"""Configuration: one typed schema (``schema.py``), validation that reports every problem at once."""

from nectargan.config.config import Config, ConfigError, default_config_dict
from nectargan.config.schema import NectarConfig

__all__ = ["Config", "ConfigError", "NectarConfig", "default_config_dict"]
