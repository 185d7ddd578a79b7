"""Configuration: packaged JSON defaults plus validation."""

from nectargan.config.config import Config, ConfigError, default_config_dict

__all__ = ["Config", "ConfigError", "default_config_dict"]
