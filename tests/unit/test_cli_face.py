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
