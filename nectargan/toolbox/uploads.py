"""Image uploads for inference: one file per request, refused as early as possible.

The body is read as a stream and counted: past :data:`MAX_UPLOAD_BYTES` the
request is refused at once, so a 2 GB upload costs the server one limit's worth
of reading, not 2 GB of memory or disk (a ``Content-Length`` over the limit is
refused before a byte is read). The name must be a single image file name
(``../x.png`` is refused by name), and the file must decode as an image before
it is kept: anything else is deleted and refused by name.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from PIL import Image

from nectargan.dataset.io import IMAGE_EXTENSIONS
from nectargan.errors import UserError
from nectargan.toolbox.paths import PathRefused, child_name

MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # one image; a 8k x 8k PNG is well under this
MAX_PIXELS = 64_000_000  # PIL's decompression-bomb guard, per image
BATCH_ID = re.compile(r"^[0-9a-f]{12}$")


class UploadRefused(UserError):
    """An upload that is not kept; the message names the file and says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


def uploads_dir(state_dir: Path) -> Path:
    """Where uploaded batches are kept (each removed with the last job that read it)."""
    return state_dir / "uploads"


def batch_dir(state_dir: Path, batch: str) -> Path:
    if not BATCH_ID.match(batch or ""):
        raise UploadRefused(f"batch {batch!r}: expected 12 hex digits (from the first upload)")
    return uploads_dir(state_dir) / batch


def checked_name(name: str) -> str:
    """A single file name with an image extension, else refused naming it."""
    try:
        child_name(name, "upload")
    except PathRefused:
        raise UploadRefused(
            f"upload {name!r}: expected a single file name (no folders, no '..')"
        ) from None
    if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
        kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise UploadRefused(f"upload {name!r}: not an image name (expected one of {kinds})")
    return name


def too_large(content_length: str | None, limit: int = MAX_UPLOAD_BYTES) -> bool:
    """Whether the declared size alone already exceeds the limit."""
    return bool(content_length and content_length.isdigit() and int(content_length) > limit)


async def save_stream(
    chunks: AsyncIterator[bytes], target: Path, name: str, limit: int = MAX_UPLOAD_BYTES
) -> int:
    """Write ``chunks`` to ``target``, stopping (and deleting it) once past ``limit`` bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with open(target, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(
                        f"upload {name!r}: larger than the limit of {limit // (1024 * 1024)} MB",
                        status=413,
                    )
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return size


def check_image(path: Path, name: str) -> tuple[int, int]:
    """Decode the whole file; a file that does not is deleted and refused by name."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise UploadRefused(
                    f"upload {name!r}: {image.width}x{image.height} px is over {MAX_PIXELS} pixels"
                )
            image.load()
            return image.size
    except UploadRefused:
        path.unlink(missing_ok=True)
        raise
    except Exception as exc:  # PIL raises many kinds for a file that is not an image
        path.unlink(missing_ok=True)
        raise UploadRefused(
            f"upload {name!r}: not a readable image ({type(exc).__name__})"
        ) from None
