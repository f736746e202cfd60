"""Face photos for simulated applicants: honest people and known fraudsters, several photos each.

The people are the 10 ORL identities held out from the face threshold's calibration
(models/data/faces/orl_test_faces.npz: 10 photos per person, 92x112 grey, taken at different
times). A fraudster's
first photo is the one fraud ops put on the blacklist; an identity thief uploads one of
the *other* photos of the same person, so the demo asks the embedder the real question
(is this the same person on a different photo?), not whether it recognises a copy. Every
upload is also a fresh variant (shift, scale, exposure, JPEG quality), as real selfies are.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from greencredit.models.face import decode_image

__all__ = ["FacePerson", "FacePool"]

FACES_DIR = Path(__file__).resolve().parents[2] / "models" / "data" / "faces"
BLACKLISTED_PEOPLE = 3  # the first held-out people are fraudsters, the rest honest applicants


@dataclass(frozen=True)
class FacePerson:
    """One person's photos (BGR); photo 0 is the enrolment photo."""

    name: str
    photos: tuple[np.ndarray, ...]


@dataclass
class FacePool:
    """The people by role; `photo()` draws an upload of one of them."""

    directory: Path = FACES_DIR

    @cached_property
    def _people(self) -> list[FacePerson]:
        with np.load(self.directory / "orl_test_faces.npz") as data:
            blob, offsets, names = data["png"], data["offsets"], data["person"]
            photos = [decode_image(blob[a:b].tobytes()) for a, b in itertools.pairwise(offsets)]
            order = list(dict.fromkeys(str(n) for n in names))
        return [
            FacePerson(name, tuple(p for p, n in zip(photos, names, strict=True) if n == name))
            for name in order
        ]

    @cached_property
    def fraudsters(self) -> list[FacePerson]:
        """People on the blacklist (by their enrolment photo)."""
        return self._people[:BLACKLISTED_PEOPLE]

    @cached_property
    def honest(self) -> list[FacePerson]:
        """People who apply as who they are."""
        return self._people[BLACKLISTED_PEOPLE:]

    @staticmethod
    def original(person: FacePerson) -> bytes:
        """The enrolment photo as the blacklist saw it (high-quality JPEG)."""
        return _jpeg(person.photos[0], 95)

    @staticmethod
    def photo(person: FacePerson, rng: random.Random, enrolled: bool = False) -> bytes:
        """A new upload of `person`: one of their photos, shifted, zoomed, re-exposed.

        Someone `enrolled` on the blacklist never sends the enrolment photo itself.
        """
        image = rng.choice(person.photos[1:] if enrolled else person.photos)
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
