"""Scoring with no I/O: AHP weights, online LR, ONNX model runners, fusion, monitoring.

Model artifacts (``.onnx`` + SHA-256 + model card) live in models/artifacts/.
"""
