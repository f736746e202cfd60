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
    """Cosine similarity of two face images and whether they are the same person."""
    from greencredit.models.face import FaceEmbedder, FaceError, cosine_similarity, same_person

    settings = get_settings()
    try:
        embedder = FaceEmbedder.load(settings.face_model_path)
        a = embedder.embed_image(_read(first, settings.face_image_max_bytes))
        b = embedder.embed_image(_read(second, settings.face_image_max_bytes))
    except FaceError as exc:
        fail(f"{exc.reason}: {exc}")
    except (OSError, ValueError, RuntimeError) as exc:
        fail(f"face model unavailable: {exc}")
    similarity = cosine_similarity(a, b)
    print_json(
        {
            "similarity": round(similarity, 6),
            "same_person": same_person(similarity, embedder.threshold),
            "threshold": embedder.threshold,
            "model": embedder.version,
        }
    )


@face_app.command("liveness")
def liveness_command(frames: list[Path]) -> None:
    """Blink and head turn across a sequence of frames (JSON: blink, head_turn, live)."""
    from greencredit.models.face import liveness

    settings = get_settings()
    result = liveness([_read(f, settings.face_image_max_bytes) for f in frames])
    print_json(
        {
            "blink": result.blink,
            "head_turn": result.head_turn,
            "live": result.live,
            "reason": result.reason,
        }
    )
