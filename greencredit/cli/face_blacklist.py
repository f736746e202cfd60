"""`greencredit face blacklist`: add, remove and list blacklisted face embeddings, read the audit.

Only embeddings are stored (never the image); with `--image` the selfie is embedded locally
by the committed face model and then discarded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import typer
from redis.asyncio import Redis

from greencredit.infra.endpoints import resolve_endpoints
from greencredit.infra.face_blacklist import FaceBlacklist
from greencredit.settings import get_settings

from ._output import fail, print_json

blacklist_app = typer.Typer(help="The face blacklist: embeddings only, every change audited.")

R = TypeVar("R")


def _with_blacklist(body: Callable[[FaceBlacklist], Awaitable[R]]) -> R:
    """Run `body` against the configured Redis; connection errors become clear failures."""
    settings = get_settings()

    async def main() -> R:
        endpoints = resolve_endpoints(settings)
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        client = Redis.from_url(
            endpoints.redis, password=password, socket_timeout=5.0, socket_connect_timeout=5.0
        )
        try:
            return await body(FaceBlacklist(client, settings.redis_key_prefix))
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except Exception as exc:  # Redis down, bad input, dimension mismatch: one line, no traceback
        fail(f"face blacklist: {exc}")


def _embedding_from_file(path: Path) -> np.ndarray:
    try:
        # allow_pickle=False: a .npy from elsewhere must not be able to run code.
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}")
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        fail(f"{path}: expected one embedding of shape [D] or [1, D], got {array.shape}")
    return np.asarray(array, dtype=np.float32)


def _embedding_from_image(path: Path) -> tuple[np.ndarray, str]:
    """Embed a selfie with the face model, imported lazily (it needs OpenCV and the artifact)."""
    try:
        from greencredit.models.face import FaceEmbedder
    except ImportError as exc:
        fail(f"--image needs the face model (greencredit.models.face), unavailable: {exc}")
    try:
        embedder = FaceEmbedder.load(get_settings().face_model_path)
    except Exception as exc:  # missing artifact, failed SHA-256 check, onnxruntime error
        fail(f"the face model could not be loaded: {exc}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc}")
    try:
        return embedder.embed_image(data), embedder.version
    except ValueError as exc:  # FaceError: unreadable image, no face, several faces, ...
        fail(f"{path.name}: no usable face: {exc}")


@blacklist_app.command("add")
def add_command(
    reason: str = typer.Option(..., "--reason", metavar="CODE", help="Reason code, e.g. FRAUD."),
    actor: str = typer.Option(..., "--actor", metavar="ID", help="Who adds it (staff id)."),
    embedding_file: Path | None = typer.Option(
        None, "--embedding-file", metavar="FILE.npy", help="One float32 embedding [D]."
    ),
    image: Path | None = typer.Option(
        None, "--image", metavar="FILE", help="A selfie to embed with the face model."
    ),
    model_version: str = typer.Option(
        "unknown",
        "--model-version",
        help="Embedder that produced --embedding-file (with --image: the model's own).",
    ),
) -> None:
    """Blacklist one face embedding; prints the new entry id."""
    if image is not None and embedding_file is None:
        embedding, model_version = _embedding_from_image(image)
    elif embedding_file is not None and image is None:
        embedding = _embedding_from_file(embedding_file)
    else:
        fail("give exactly one of --embedding-file or --image")

    async def add(blacklist: FaceBlacklist) -> str:
        return await blacklist.add(embedding, reason, actor, model_version)

    entry_id = _with_blacklist(add)
    print_json(
        {"entry_id": entry_id, "dim": int(embedding.shape[-1]), "model_version": model_version}
    )


@blacklist_app.command("remove")
def remove_command(
    entry_id: str = typer.Argument(..., metavar="ENTRY_ID"),
    actor: str = typer.Option(..., "--actor", metavar="ID", help="Who removes it (staff id)."),
) -> None:
    """Remove an entry; exit 1 if it does not exist."""

    async def remove(blacklist: FaceBlacklist) -> bool:
        return await blacklist.remove(entry_id, actor)

    removed = _with_blacklist(remove)
    print_json({"entry_id": entry_id, "removed": removed})
    if not removed:
        raise typer.Exit(1)


@blacklist_app.command("list")
def list_command(
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many entries."),
    cursor: int = typer.Option(0, "--cursor", min=0, help="Skip this many (next page)."),
) -> None:
    """Entries oldest first, without their embeddings."""

    async def entries(blacklist: FaceBlacklist) -> list[dict[str, Any]]:
        return [dataclasses.asdict(e) for e in await blacklist.list(limit=limit, cursor=cursor)]

    print_json(_with_blacklist(entries))


@blacklist_app.command("audit")
def audit_command(
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many records."),
) -> None:
    """The latest adds and removes, newest first."""

    async def records(blacklist: FaceBlacklist) -> list[dict[str, Any]]:
        return await blacklist.audit(limit=limit)

    print_json(_with_blacklist(records))
