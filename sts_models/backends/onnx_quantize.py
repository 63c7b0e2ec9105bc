"""Dynamic int8 quantization of an exported graph with ONNX Runtime (`onnxruntime.quantization.quantize_dynamic`),
and the check of the caller's `quantization_options`."""

from __future__ import annotations

import inspect
import logging

from ..errors import STSUserError


class _QuantizerNotes(logging.Filter):
    """Drop the quantizer's notes to the root logger below ERROR: on graphs fused ahead of time it suggests the
    pre-processing pass (which cannot read ONNX Runtime's fused operators) and says it assumes float32
    (`DefaultTensorType`) where that pass would have found the type."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "quantization" not in record.pathname


def quantize_graph(source: str, target: str, options: dict | None, pre_process: bool) -> None:
    """Dynamic int8 quantization of `source`'s weights into `target` (`onnxruntime.quantization`).

    `pre_process` first runs ONNX Runtime's `quant_pre_process` (ONNX shape inference and ONNX Runtime's basic,
    portable graph optimizations). It removes the `Identity` nodes through which the TorchScript exporter
    shares weights used twice (the `cross` arch's two encoder passes): the quantizer only quantizes a MatMul
    whose weight is an initializer, and left half of that graph in float32 without it.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if pre_process:
        prepared = f"{target}.prepared.onnx"
        # symbolic shape inference gives up on the cross-attention graph; ONNX's own shape inference suffices
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        source = prepared

    settings = dict(
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"WeightSymmetric": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    options = dict(options or {})
    # the caller's extra_options are added to the defaults (an ONNX Runtime setting each), not put in their place
    settings["extra_options"].update(options.pop("extra_options", None) or {})
    settings.update(options)
    notes = _QuantizerNotes()
    logging.getLogger().addFilter(notes)
    try:
        quantize_dynamic(source, target, **settings)
    finally:
        logging.getLogger().removeFilter(notes)


def check_quantization_options(quantize: str | None, options: dict | None) -> None:
    """Refuse, before anything is traced, `quantization_options` that `quantize_dynamic` would not take."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise STSUserError(
            f"quantization_options must be a dict of quantize_dynamic arguments, got {type(options).__name__}"
        )
    if quantize is None and options:
        raise STSUserError(
            "quantization_options are used only with quantize='int8'; pass quantize='int8' or leave them out"
        )
    from onnxruntime.quantization import quantize_dynamic

    accepted = set(inspect.signature(quantize_dynamic).parameters) - {"model_input", "model_output"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise STSUserError(
            f"quantization_options: {', '.join(map(repr, unknown))} is not an argument of "
            f"onnxruntime.quantization.quantize_dynamic (it takes {', '.join(sorted(accepted))})"
        )
    extra = options.get("extra_options")
    if extra is not None and not isinstance(extra, dict):
        raise STSUserError(f"quantization_options['extra_options'] must be a dict, got {type(extra).__name__}")
