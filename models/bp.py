"""Runtime of the BP credit model: the committed ONNX graph, verified, scored in batches.

Pure: no Kafka, no Redis. Build the input with :mod:`greencredit.models.bp_features`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime

from greencredit.models.bp_features import BP_FEATURE_NAMES

from .pinned import ModelIntegrityError, pinned_onnx_session

__all__ = ["ARTIFACTS_DIR", "BP_MODEL_PATH", "BpCreditModel", "ModelIntegrityError"]

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
BP_MODEL_PATH = ARTIFACTS_DIR / "bp_credit.onnx"
_INPUT = "features"
_OUTPUT = "default_proba"


class BpCreditModel:
    """P(bad) for a batch of BP feature vectors, from a SHA-256-verified ONNX file."""

    def __init__(self, session: onnxruntime.InferenceSession, sha256: str) -> None:
        """Wrap an open session; use :meth:`load`, which verifies the file first."""
        self._session = session
        self._sha256 = sha256

    @classmethod
    def load(cls, path: Path | None = None, expected_sha256: str | None = None) -> BpCreditModel:
        """Verify and open the model (default: the committed artifact and its .sha256 file).

        The session is built from the very bytes that were hashed, so the file cannot change
        between the check and the load.
        """
        path = path or BP_MODEL_PATH
        session, actual = pinned_onnx_session(path, expected_sha256)
        cls._check_contract(session, path)
        return cls(session, actual)

    @staticmethod
    def _check_contract(session: onnxruntime.InferenceSession, path: Path) -> None:
        # A hash proves the file is intact, not that it was trained on today's feature layout.
        inputs, outputs = session.get_inputs(), session.get_outputs()
        names = session.get_modelmeta().custom_metadata_map.get("feature_names")
        if (
            [i.name for i in inputs] != [_INPUT]
            or [o.name for o in outputs] != [_OUTPUT]
            or names is None
            or tuple(json.loads(names)) != BP_FEATURE_NAMES
        ):
            raise ModelIntegrityError(f"{path.name}: inputs/outputs differ from bp_features")

    @property
    def version(self) -> str:
        """``bp_credit@<first 12 hex of the file's SHA-256>``, for decisions and audit logs."""
        return f"bp_credit@{self._sha256[:12]}"

    @property
    def n_features(self) -> int:
        """Width of the input vector the model expects."""
        return len(BP_FEATURE_NAMES)

    def predict_default_proba(self, features: np.ndarray) -> np.ndarray:
        """P(bad) per row of a 2-D ``[n, n_features]`` matrix, as a 1-D float32 array."""
        matrix = np.asarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"features: expected shape (n, {self.n_features})")
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        (proba,) = self._session.run([_OUTPUT], {_INPUT: np.ascontiguousarray(matrix)})
        return np.asarray(proba, dtype=np.float32).reshape(-1)
