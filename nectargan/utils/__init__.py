"""Small helpers with no torch dependency."""

from nectargan.utils.durations import format_duration
from nectargan.utils.progress_bar import ProgressBar

__all__ = ["ProgressBar", "format_duration"]
