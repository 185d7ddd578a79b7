"""Reading an epoch spec (``7``, ``latest`` / ``-1``, ``best``): which checkpoint a user means.

Pure text to value, without torch, so the Toolbox checks a form's epoch with the same reading
the CLI's ``--epoch`` and :func:`nectargan.trainers.resume.choose.find_checkpoint` use.
"""

from __future__ import annotations

from nectargan.errors import CheckpointUserError
from nectargan.utils.numbers import is_int

LATEST, BEST = "latest", "best"


def parse_epoch(text: str | int) -> int | str:
    """``'latest'`` / ``-1`` -> ``'latest'``; ``'best'``; ``'7'`` -> 7; anything else is refused."""
    if is_int(text):
        value = text
    else:
        word = str(text).strip().lower()
        if word in (LATEST, BEST):
            return word
        try:
            value = int(word)
        except ValueError:
            raise CheckpointUserError(
                f"--epoch: expected a number of completed epochs, 'latest' or 'best', got {text!r}"
            ) from None
    if value == -1:
        return LATEST
    if value < 0:
        raise CheckpointUserError(
            f"--epoch: expected a number of completed epochs >= 0, 'latest' or 'best', got {value}"
        )
    return value
