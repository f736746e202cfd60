"""Model artifacts pinned by SHA-256: read the bytes once, verify them, then use them.

Every model file the engine loads (BP and face ONNX graphs, the online-LR bootstrap state)
goes through here, so "the file is the one its checksum vouches for" is checked one way.
The checked bytes are the ones used, so the file cannot change between check and load.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import onnxruntime

__all__ = ["ModelIntegrityError", "pinned_onnx_session", "read_pinned", "sidecar_sha256"]


class ModelIntegrityError(RuntimeError):
    """The model file is not the one its SHA-256 vouches for (or it does not fit the code)."""


def sidecar_sha256(model_path: Path) -> str:
    """The expected SHA-256 from `<file>.sha256` (sha256sum's "<hex>  <name>" is accepted)."""
    sidecar = model_path.with_name(model_path.name + ".sha256")
    try:
        text = sidecar.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ModelIntegrityError(f"no checksum file next to {model_path.name}") from None
    tokens = text.split()
    if not tokens:
        raise ModelIntegrityError(f"empty checksum file for {model_path.name}")
    return tokens[0]


def read_pinned(path: Path, expected_sha256: str | None = None) -> tuple[bytes, str]:
    """The file's bytes and their SHA-256, after checking it against the expected digest."""
    expected = (expected_sha256 or sidecar_sha256(path)).strip().lower()
    payload = path.read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(actual, expected):
        raise ModelIntegrityError(
            f"{path.name}: SHA-256 {actual[:12]}… does not match expected {expected[:12]}…"
        )
    return payload, actual


def pinned_onnx_session(
    path: Path, expected_sha256: str | None = None
) -> tuple[onnxruntime.InferenceSession, str]:
    """A single-threaded CPU session over the verified bytes, and their SHA-256.

    One thread: the engine runs one scoring worker per core, and extra intra-op threads
    would only oversubscribe the CPU for networks this small.
    """
    payload, digest = read_pinned(path, expected_sha256)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        payload, sess_options=options, providers=["CPUExecutionProvider"]
    )
    return session, digest
