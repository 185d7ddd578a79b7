"""What a run says about itself (its status record), readable without torch."""

from nectargan.runs.status import RunStatus, StatusWriter, read_status

__all__ = ["RunStatus", "StatusWriter", "read_status"]
