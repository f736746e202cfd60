"""`greencredit face compare|liveness|blacklist`: the face checks from the command line."""

from __future__ import annotations

from pathlib import Path

import typer

from greencredit.settings import get_settings

from ._output import fail, print_json
from .face_blacklist import blacklist_app

face_app = typer.Typer(help="Face verification: compare, liveness, blacklist.")
face_app.add_typer(blacklist_app, name="blacklist")


def _read(path: Path, limit: int) -> bytes:
    try:
        if path.stat().st_size > limit:
            fail(f"{path}: larger than {limit} bytes (IMAGE_TOO_LARGE)")
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


@face_app.command("compare")
def compare_command(first: Path, second: Path) -> None:
    """Cosine similarity of two face images and whether they match at the shipped threshold."""
    from greencredit.models.face import FaceEmbedder, FaceError, cosine_similarity, same_person

    settings = get_settings()
    try:
        embedder = FaceEmbedder.load(settings.face_model_path)
    except (OSError, ValueError, RuntimeError) as exc:
        fail(f"face model unavailable: {exc}")
    vectors = []
    for path in (first, second):
        try:
            data = _read(path, settings.face_image_max_bytes)
            vectors.append(embedder.embed_image(data, settings.face_image_max_bytes))
        except FaceError as exc:
            fail(f"{path}: {exc.reason}: {exc}")
    similarity = cosine_similarity(vectors[0], vectors[1])
    print_json(
        {
            "similarity": round(similarity, 6),
            "same_person": same_person(similarity, embedder.threshold),
            "threshold": embedder.threshold,
            "near_miss": embedder.review_threshold <= similarity < embedder.threshold,
            "review_threshold": embedder.review_threshold,
            "model": embedder.version,
        }
    )


@face_app.command("liveness")
def liveness_command(frames: list[Path]) -> None:
    """Blink and head turn across a sequence of frames (JSON: blink, head_turn, live)."""
    from greencredit.models.face import FaceDetector, liveness

    settings = get_settings()
    try:
        detector = FaceDetector.load()
    except (OSError, ValueError, RuntimeError) as exc:
        fail(f"face detector unavailable: {exc}")
    result = liveness([_read(f, settings.face_image_max_bytes) for f in frames], detector)
    print_json(
        {
            "blink": result.blink,
            "head_turn": result.head_turn,
            "live": result.live,
            "reason": result.reason,
        }
    )
