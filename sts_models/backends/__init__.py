"""Serving backends other than PyTorch. Each is a leaf: the models never import it.

- `sts_models.backends.onnx`: export to ONNX and serve with ONNX Runtime (`pip install 'sts-models[onnx]'`).
"""
