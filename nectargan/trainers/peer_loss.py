"""A distributed run that lost one of its processes: one clear line instead of a traceback.

Why: when a node dies (killed, out of memory, network gone) the survivors'
next collective fails with a backend error whose text is buried in a
traceback per rank. Rank 0 has saved its state by then (``on_interrupt``);
what the user needs is which peer was lost, where the checkpoints are, and
how to continue.
"""

from __future__ import annotations

import re

_PEER = re.compile(r"\[([0-9a-fA-F.:]+)\]:(\d+)")  # gloo names the peer as [host]:port
_MARKERS = (
    "Connection closed by peer",
    "Connection reset by peer",
    "Broken pipe",
    "Socket Timeout",
    "Timed out waiting",
    "timed out",
    "NCCL communicator was aborted",
)


def describe_peer_loss(exc: BaseException, world_size: int) -> str | None:
    """``lost contact with ...`` for a failed collective; None for any other error."""
    text = str(exc)
    if not isinstance(exc, RuntimeError) or not any(m in text for m in _MARKERS):
        return None
    match = _PEER.search(text)
    where = f"the peer at {match.group(1)}:{match.group(2)}" if match else "a peer process"
    reason = next((m.lower() for m in _MARKERS if m in text), "its connection failed")
    return (
        f"lost contact with {where} ({reason}; {world_size} processes in the job): "
        "another rank or node has stopped or crashed"
    )
