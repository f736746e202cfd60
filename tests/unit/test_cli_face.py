"""`greencredit face compare|liveness` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FACE = Path(__file__).resolve().parents[2] / "models" / "data" / "faces" / "astronaut.jpg"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greencredit", "face", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compare_the_same_face():
    run = _run("compare", str(FACE), str(FACE))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["same_person"] is True and result["similarity"] > 0.99


def test_compare_refuses_what_is_not_an_image(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00" * 500)
    run = _run("compare", str(FACE), str(junk))
    assert run.returncode == 2
    assert "IMAGE_UNREADABLE" in run.stderr and "Traceback" not in run.stderr


def test_compare_refuses_a_huge_file_before_reading_it(tmp_path):
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    run = _run("compare", str(FACE), str(huge))
    assert run.returncode == 2 and "IMAGE_TOO_LARGE" in run.stderr


def test_liveness_of_a_still_photo_fails_with_a_reason():
    run = _run("liveness", str(FACE), str(FACE), str(FACE))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["live"] is False and result["reason"]


def _orl(tmp_path, person: str, number: int) -> Path:
    import itertools

    import numpy as np

    with np.load(FACE.parent / "orl_test_faces.npz") as data:
        for (a, b), p, n in zip(
            itertools.pairwise(data["offsets"]), data["person"], data["photo"], strict=True
        ):
            if (str(p), int(n)) == (person, number):
                path = tmp_path / f"{person}-{number}.png"
                path.write_bytes(data["png"][a:b].tobytes())
                return path
    raise KeyError(person)


def test_compare_two_photos_of_one_person_and_of_two_people(tmp_path):
    same = json.loads(
        _run("compare", str(_orl(tmp_path, "s13", 1)), str(_orl(tmp_path, "s13", 7))).stdout
    )
    assert same["same_person"] is True and same["similarity"] >= same["threshold"]
    other = _run("compare", str(_orl(tmp_path, "s13", 1)), str(_orl(tmp_path, "s32", 1)))
    assert other.returncode == 0, other.stderr
    result = json.loads(other.stdout)
    assert result["same_person"] is False and result["similarity"] < result["review_threshold"]
    assert result["model"].startswith("face_sface@")


def test_compare_names_the_file_without_a_face(tmp_path):
    import cv2
    import numpy as np

    blank = tmp_path / "blank.png"
    blank.write_bytes(cv2.imencode(".png", np.full((240, 320, 3), 200, np.uint8))[1].tobytes())
    run = _run("compare", str(FACE), str(blank))
    assert run.returncode == 2 and "NO_FACE" in run.stderr and "blank.png" in run.stderr
    assert "Traceback" not in run.stderr
