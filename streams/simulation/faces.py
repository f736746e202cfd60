"""Face photos for simulated applicants: a pool of honest faces and a few fraudsters' faces.

The images are the ones the face tests use (models/data/faces: scikit-image's astronaut and
20 held-out LFW crops). Each application gets a fresh variant (shift, scale, brightness,
JPEG quality) so no two uploads are byte-identical, as with real selfies. The fraudsters'
faces go on the blacklist from their *original* image; their applications send variants.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FacePool"]

FACES_DIR = Path(__file__).resolve().parents[2] / "models" / "data" / "faces"
BLACKLISTED_LFW = 4  # the first crops are fraudsters' faces, the rest honest applicants


def _canvas(gray: np.ndarray) -> np.ndarray:
    """A 25x25 crop upscaled and padded so the Haar detector sees a face with surroundings."""
    big = cv2.resize(gray, (200, 200), interpolation=cv2.INTER_CUBIC)
    padded = cv2.copyMakeBorder(big, 100, 100, 120, 120, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(padded, cv2.COLOR_GRAY2BGR)


@dataclass
class FacePool:
    """Original images by role; `photo()` draws a variant."""

    directory: Path = FACES_DIR

    @cached_property
    def _crops(self) -> list[np.ndarray]:
        with np.load(self.directory / "lfw_test_faces.npz") as data:
            return [_canvas(face) for face in data["faces"]]

    @cached_property
    def fraudsters(self) -> list[np.ndarray]:
        """Faces on the blacklist: the astronaut portrait and the first LFW crops."""
        astronaut = cv2.imread(str(self.directory / "astronaut.jpg"))
        if astronaut is None:
            raise FileNotFoundError(self.directory / "astronaut.jpg")
        return [np.asarray(astronaut), *self._crops[:BLACKLISTED_LFW]]

    @cached_property
    def honest(self) -> list[np.ndarray]:
        """Faces of applicants who are who they say they are."""
        return self._crops[BLACKLISTED_LFW:]

    @staticmethod
    def original(image: np.ndarray) -> bytes:
        """The image as the blacklist saw it (high-quality JPEG)."""
        return _jpeg(image, 95)

    @staticmethod
    def photo(image: np.ndarray, rng: random.Random) -> bytes:
        """A new upload of the same face: small shift, zoom, exposure change, JPEG quality."""
        height, width = image.shape[:2]
        scale = rng.uniform(0.93, 1.07)
        shift_x = rng.uniform(-0.04, 0.04) * width
        shift_y = rng.uniform(-0.04, 0.04) * height
        matrix = np.array(
            [
                [scale, 0, (1 - scale) * width / 2 + shift_x],
                [0, scale, (1 - scale) * height / 2 + shift_y],
            ],
            dtype=np.float32,
        )
        moved = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
        exposed = cv2.convertScaleAbs(
            moved, alpha=rng.uniform(0.85, 1.15), beta=rng.uniform(-15, 15)
        )
        return _jpeg(exposed, rng.randrange(70, 95))


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()
