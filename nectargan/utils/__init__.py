"""Small helpers with no torch dependency."""

from nectargan.utils.progress_bar import ProgressBar, format_duration

__all__ = ["ProgressBar", "format_duration"]
