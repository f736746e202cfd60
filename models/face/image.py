"""Decoding an uploaded selfie: size limits first, then OpenCV, every refusal a typed error.

Every rejection is a :class:`FaceError` whose ``reason`` is a stable code for API responses.
"""

from __future__ import annotations

import struct
from typing import ClassVar

import cv2
import numpy as np

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MIN_IMAGE_SIDE",
    "FaceError",
    "FaceTooSmall",
    "ImageTooLarge",
    "ImageTooSmall",
    "ImageUnreadable",
    "MultipleFaces",
    "NoFace",
    "decode_image",
]

MAX_IMAGE_BYTES = 2_000_000
# A 2 MB PNG of a flat colour can declare 30000x30000 pixels; refuse it before decoding.
MAX_IMAGE_PIXELS = 25_000_000
MIN_IMAGE_SIDE = 64


class FaceError(ValueError):
    """A selfie we cannot use; ``reason`` is the stable code returned to the caller."""

    reason: ClassVar[str] = "FACE_ERROR"


class ImageTooLarge(FaceError):
    """More bytes (or declared pixels) than we are willing to decode."""

    reason = "IMAGE_TOO_LARGE"


class ImageUnreadable(FaceError):
    """Not a PNG/JPEG, or a corrupt one."""

    reason = "IMAGE_UNREADABLE"


class ImageTooSmall(FaceError):
    """Decoded, but too few pixels to hold a usable face."""

    reason = "IMAGE_TOO_SMALL"


class NoFace(FaceError):
    """No face found."""

    reason = "NO_FACE"


class MultipleFaces(FaceError):
    """More than one face of comparable size: we cannot tell whose selfie it is."""

    reason = "MULTIPLE_FACES"


class FaceTooSmall(FaceError):
    """The face is found but too small to embed reliably."""

    reason = "FACE_TOO_SMALL"


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR or JPEG SOF header, None if neither is found."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            # SOF0..SOF15 carry the frame size; C4/C8/CC are DHT/JPG/DAC, not frames.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


def decode_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> np.ndarray:
    """PNG/JPEG bytes to a BGR uint8 ``[h, w, 3]`` array, or a typed :class:`FaceError`.

    Sizes are checked before decoding so that an oversized upload costs no memory.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes > {max_bytes}")
    size = _declared_size(data)
    if size is None:
        raise ImageUnreadable("not a PNG or JPEG image")
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(f"{size[0]}x{size[1]} pixels > {MAX_IMAGE_PIXELS}")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise ImageUnreadable("corrupt image")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise ImageTooSmall(f"{image.shape[1]}x{image.shape[0]} < {MIN_IMAGE_SIDE} px")
    return np.asarray(image, dtype=np.uint8)
