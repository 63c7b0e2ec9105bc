#!/usr/bin/env python
"""ONNX serving benchmark: what the ONNX Runtime path costs in quality and gains in speed.

Quality: STS-B test (or, with `--split validation`, dev) Spearman of each model in PyTorch, exported to ONNX
float32, and in int8 (ours, and with sentence-transformers' `avx512_vnni` quantization settings for comparison).

Speed, in alternating rounds (each system once per round, the order reversed every other round, best round kept:
`common.race`), on the CPU:
- `encode` of STS-B test sentences: sentence-transformers' PyTorch backend and ONNX backend against our
  siamese model in PyTorch, ONNX float32 and ONNX int8;
- cross-encoder `predict` of STS-B test pairs: sentence-transformers' `CrossEncoder` against our `bert` arch
  reading each pair once (the same computation: one joint sequence, a head) and `symmetric` (both orders,
  as configs/bert.yaml: twice the work), and our `cross` arch (`cosine_skip`, as configs/cross.yaml)
  against itself in PyTorch.
Speed models are all-MiniLM-L6-v2 with untrained heads: the compute is the trained models'.

sentence-transformers' `backend="onnx"` needs optimum-onnx, whose only release (0.1.0) requires
transformers<4.58 while sentence-transformers 6 requires transformers>=5: where it does not load, the
script measures a stand-in that does what that backend does (the plain Hugging Face model exported by
`torch.onnx.export`, run in a default ONNX Runtime session from inside sentence-transformers' own
encode/predict loop, int8 with its `avx512_vnni` settings) and says so in the results.

    python benchmarks/onnx_serving.py                         # untrained MiniLM siamese -> docs/results/onnx.json
    python benchmarks/onnx_serving.py --model outputs/siamese --model outputs/bert --model outputs/cross
    python benchmarks/onnx_serving.py --skip_speed --model outputs/cross
    python benchmarks/onnx_serving.py --skip_speed --split validation --model outputs/bert --results /tmp/onnx_dev.json
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import tempfile
import warnings
from pathlib import Path

from common import RESULTS, cpu_fields, cpu_model, default_encoder, onnx_served, race, stsb_rows, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from sts_models import STSCrossAttentionModel, STSRegressionModel, STSSiameseModel  # noqa: E402
from sts_models.architectures import load_model  # noqa: E402
from sts_models.backends.onnx import import_onnx_dependencies  # noqa: E402

UNTRAINED = "untrained"  # all-MiniLM-L6-v2 as a siamese model, mean pooling, cosine: STS-B test 0.8203
# sentence-transformers' `export_dynamic_quantized_onnx_model(model, "avx512_vnni")` settings
ST_AVX512_VNNI = {"per_channel": True, "reduce_range": False}


def load_for_quality(spec: str):
    if spec == UNTRAINED:
        return STSSiameseModel.from_encoder(default_encoder(), pooling="mean")
    return load_model(None, spec)


def quality(spec: str, rows, scratch: Path) -> dict:
    """Spearman of PyTorch, ONNX float32 and ONNX int8 predictions on `rows`, and their distance."""
    model = load_for_quality(spec).eval()
    pairs, gold = [(a, b) for a, b, _ in rows], np.array([score for *_, score in rows])
    reference = model.predict(pairs, batch_size=32, show_progress_bar=False)
    result = {"model": spec, "arch": model.config.arch, "pytorch": spearmanr(reference, gold).correlation}
    variants = {
        "onnx_float32": {},
        "onnx_int8": {"quantize": "int8"},
        "onnx_int8_st_avx512_vnni_settings": {"quantize": "int8", "quantization_options": ST_AVX512_VNNI},
        "onnx_int8_fused_ahead_of_time": {"quantize": "int8", "optimize": True},
    }
    for name, options in variants.items():
        served = onnx_served(model, scratch / f"{model.config.arch}-{name}", **options)
        scores = served.predict(pairs, batch_size=32, show_progress_bar=False)
        result[name] = spearmanr(scores, gold).correlation
        result[f"{name}_minus_pytorch"] = result[name] - result["pytorch"]
        result[f"{name}_max_abs_score_diff"] = float(np.abs(scores - reference).max())
        result[f"{name}_median_abs_score_diff"] = float(np.median(np.abs(scores - reference)))
        if name == "onnx_int8":  # int8 activations are scaled per batch: the same model, batched otherwise
            scores = served.predict(pairs, batch_size=8, show_progress_bar=False)
            result["onnx_int8_batch_8"] = spearmanr(scores, gold).correlation
            result["onnx_int8_batch_8_minus_pytorch"] = result["onnx_int8_batch_8"] - result["pytorch"]
    print(
        f"  {spec} ({result['arch']}): PyTorch {result['pytorch']:.4f}, ONNX float32 {result['onnx_float32']:.4f} "
        f"({result['onnx_float32_minus_pytorch']:+.4f}), int8 {result['onnx_int8']:.4f} "
        f"({result['onnx_int8_minus_pytorch']:+.4f}; batches of 8: {result['onnx_int8_batch_8_minus_pytorch']:+.4f}), "
        f"int8 with ST's avx512_vnni settings "
        f"{result['onnx_int8_st_avx512_vnni_settings']:.4f} ({result['onnx_int8_st_avx512_vnni_settings_minus_pytorch']:+.4f}), "
        f"int8 fused ahead of time {result['onnx_int8_fused_ahead_of_time']:.4f} "
        f"({result['onnx_int8_fused_ahead_of_time_minus_pytorch']:+.4f})",
        flush=True,
    )
    return result


class ORTStandIn(torch.nn.Module):
    """What optimum's `ORTModelFor*` does inside sentence-transformers' `backend="onnx"`: torch tensors in,
    one ONNX Runtime session run, torch tensors out."""

    def __init__(self, session, config, output_name: str):
        super().__init__()
        self.session, self.config, self.output_name = session, config, output_name
        self.input_names = {node.name for node in session.get_inputs()}
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # sentence-transformers reads .device

    def forward(self, **inputs):
        feed = {name: value.cpu().numpy() for name, value in inputs.items() if name in self.input_names}
        return {self.output_name: torch.from_numpy(self.session.run(None, feed)[0])}


def st_onnx_stand_in(hf_model, folder: Path, output_name: str, quantize: bool):
    """`hf_model` exported as optimum's exporter does (TorchScript `torch.onnx.export`, dynamic axes), int8 with
    sentence-transformers' avx512_vnni settings when `quantize`; a default ONNX Runtime session wrapped."""
    _, ort = import_onnx_dependencies()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    hf_model = hf_model.eval()
    hf_model.set_attn_implementation("eager")  # the graph ONNX Runtime's own fusions recognize at load
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = {name: torch.ones(2, 8, dtype=torch.long) for name in names}
    example["token_type_ids"].zero_()
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes[output_name] = {0: "batch", 1: "sequence"} if output_name == "last_hidden_state" else {0: "batch"}

    class Outputs(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[
                output_name
            ]

    with warnings.catch_warnings():  # the tracer's notes on transformers code, as in export_onnx
        warnings.simplefilter("ignore")
        if not path.exists():
            torch.onnx.export(
                Outputs(hf_model).eval(),
                tuple(example.values()),
                str(path),
                dynamo=False,
                input_names=names,
                output_names=[output_name],
                dynamic_axes=axes,
                opset_version=17,
            )
        if quantize:
            quantized = folder / "model_qint8_avx512_vnni.onnx"
            if not quantized.exists():
                level = logging.getLogger().level
                logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process the graph first
                try:
                    quantize_dynamic(
                        str(path),
                        str(quantized),
                        weight_type=QuantType.QInt8,
                        extra_options={"WeightSymmetric": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
                        **ST_AVX512_VNNI,
                    )
                finally:
                    logging.getLogger().setLevel(level)
            path = quantized
    session = ort.InferenceSession(str(path), ort.SessionOptions(), providers=["CPUExecutionProvider"])
    return ORTStandIn(session, hf_model.config, output_name)


def ratio(times: dict, slow: str, fast: str) -> float | None:
    if slow not in times or fast not in times:
        return None
    return times[slow]["best_s"] / times[fast]["best_s"]


def speed(rows, scratch: Path, rounds: int, num_sentences: int, num_pairs: int) -> dict:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    path = default_encoder()
    sentences = list(dict.fromkeys(s for a, b, _ in rows for s in (a, b)))[:num_sentences]
    pairs = [(a, b) for a, b, _ in rows][:num_pairs]
    notes = {}

    print(f"encode: {len(sentences)} sentences, batch 32", flush=True)
    siamese = STSSiameseModel.from_encoder(path, pooling="mean").eval()
    encode = {"st_pytorch": SentenceTransformer(path, device="cpu")}
    try:
        encode["st_onnx"] = SentenceTransformer(path, device="cpu", backend="onnx")
        encode["st_onnx_int8"] = SentenceTransformer(
            path, device="cpu", backend="onnx", model_kwargs={"file_name": "model_qint8_avx512_vnni.onnx"}
        )
        notes["st_onnx"] = 'sentence-transformers backend="onnx"'
    except Exception as error:  # noqa: BLE001 - any failure to load the backend means the stand-in is measured
        notes["st_onnx"] = f'backend="onnx" did not load ({str(error).splitlines()[0][:160]}): stand-in measured'
        for name, quantize in (("st_onnx", False), ("st_onnx_int8", True)):
            model = SentenceTransformer(path, device="cpu")
            model[0].model = st_onnx_stand_in(model[0].model, scratch / "st-encoder", "last_hidden_state", quantize)
            encode[name] = model
    systems = {
        name: (lambda m=m: m.encode(sentences, batch_size=32, show_progress_bar=False)) for name, m in encode.items()
    }
    systems["ours_pytorch"] = lambda: siamese.encode(sentences, batch_size=32, show_progress_bar=False)
    for name, options in (
        ("ours_onnx_float32", {}),
        ("ours_onnx_int8", {"quantize": "int8"}),
        ("ours_onnx_float32_fused_ahead_of_time", {"optimize": True}),
        ("ours_onnx_int8_fused_ahead_of_time", {"quantize": "int8", "optimize": True}),
    ):
        served = onnx_served(siamese, scratch / f"siamese-{name}", **options)
        systems[name] = lambda served=served: served.encode(sentences, batch_size=32, show_progress_bar=False)
    encode_times = race(systems, rounds)

    print(f"cross-encoder predict: {len(pairs)} pairs, batch 32", flush=True)
    cross_encoders = {"st_cross_encoder_pytorch": CrossEncoder(path, num_labels=1, device="cpu")}
    for name, quantize in (("st_cross_encoder_onnx", False), ("st_cross_encoder_onnx_int8", True)):
        model = CrossEncoder(path, num_labels=1, device="cpu")
        model[0].model = st_onnx_stand_in(model[0].model, scratch / "st-cross-encoder", "logits", quantize)
        cross_encoders[name] = model
    systems = {
        name: (lambda m=m: m.predict(pairs, batch_size=32, show_progress_bar=False))
        for name, m in cross_encoders.items()
    }
    # `bert` reads each pair once, as the CrossEncoder does; configs/bert.yaml's model is `symmetric` (both
    # orders: twice the work); `cross` as in configs/cross.yaml
    for arch, model_class, options in (
        ("bert", STSRegressionModel, {}),
        ("bert_symmetric", STSRegressionModel, {"symmetric": True}),
        ("cross", STSCrossAttentionModel, {"cosine_skip": True}),
    ):
        torch.manual_seed(0)
        model = model_class.from_encoder(path, **options).eval()
        systems[f"ours_{arch}_pytorch"] = lambda model=model: model.predict(
            pairs, batch_size=32, show_progress_bar=False
        )
        variants = [("onnx_float32", {}), ("onnx_int8", {"quantize": "int8"})]
        if arch != "bert_symmetric":
            variants += [
                ("onnx_float32_fused_ahead_of_time", {"optimize": True}),
                ("onnx_int8_fused_ahead_of_time", {"quantize": "int8", "optimize": True}),
            ]
        for name, options in variants:
            served = onnx_served(model, scratch / f"{arch}-{name}", **options)
            systems[f"ours_{arch}_{name}"] = lambda served=served: served.predict(
                pairs, batch_size=32, show_progress_bar=False
            )
    predict_times = race(systems, rounds)

    pairs_of_systems = [
        ("encode", encode_times, "st_pytorch", "ours_onnx_int8"),
        ("encode", encode_times, "st_pytorch", "ours_onnx_float32"),
        ("encode", encode_times, "st_onnx", "ours_onnx_float32"),
        ("encode", encode_times, "st_onnx_int8", "ours_onnx_int8"),
        ("encode", encode_times, "ours_onnx_float32_fused_ahead_of_time", "ours_onnx_float32"),
        ("encode", encode_times, "ours_onnx_int8_fused_ahead_of_time", "ours_onnx_int8"),
    ]
    for ours in ("bert", "bert_symmetric"):
        pairs_of_systems += [
            ("predict", predict_times, "st_cross_encoder_pytorch", f"ours_{ours}_onnx_int8"),
            ("predict", predict_times, "st_cross_encoder_pytorch", f"ours_{ours}_onnx_float32"),
            ("predict", predict_times, "st_cross_encoder_onnx", f"ours_{ours}_onnx_float32"),
            ("predict", predict_times, "st_cross_encoder_onnx_int8", f"ours_{ours}_onnx_int8"),
        ]
    for ours in ("bert", "bert_symmetric", "cross"):
        pairs_of_systems += [
            ("predict", predict_times, f"ours_{ours}_pytorch", f"ours_{ours}_onnx_int8"),
            ("predict", predict_times, f"ours_{ours}_pytorch", f"ours_{ours}_onnx_float32"),
        ]
    for ours in ("bert", "cross"):
        pairs_of_systems += [
            (
                "predict",
                predict_times,
                f"ours_{ours}_onnx_{precision}_fused_ahead_of_time",
                f"ours_{ours}_onnx_{precision}",
            )
            for precision in ("float32", "int8")
        ]
    ratios = {f"{task}: {slow} / {fast}": ratio(times, slow, fast) for task, times, slow, fast in pairs_of_systems}
    notes["st_cross_encoder_onnx"] = "stand-in (CrossEncoder has the same optimum dependency as backend='onnx')"
    for name, value in ratios.items():
        print(f"  {name}: {value:.2f}x" if value else f"  {name}: -")
    return {
        "num_sentences": len(sentences),
        "num_pairs": len(pairs),
        "rounds": rounds,
        "encode": encode_times,
        "predict": predict_times,
        "ratios": ratios,
        "notes": notes,
    }


def cpu_description() -> dict:
    """The CPU's model name and whether it has AVX512-VNNI (what int8 kernels use)."""
    return {"model_name": cpu_model(), "avx512_vnni": "avx512_vnni" in cpu_fields().get("flags", "").split()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help=f"a saved STS model folder, or '{UNTRAINED}' (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--num_sentences", type=int, default=1000)
    parser.add_argument("--num_pairs", type=int, default=500)
    parser.add_argument("--skip_quality", action="store_true")
    parser.add_argument("--skip_speed", action="store_true")
    parser.add_argument(
        "--split",
        choices=("validation", "test"),
        default="test",
        help="the STS-B split of the quality check: choose export settings on validation, report test",
    )
    parser.add_argument("--results", default=str(RESULTS / "onnx.json"))
    args = parser.parse_args(argv)
    import onnxruntime

    rows = stsb_rows(args.split)
    result = {
        "command": "python benchmarks/onnx_serving.py " + " ".join(shlex.quote(a) for a in argv),
        "quality_split": args.split,
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_description(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_start": os.getloadavg(),
        },
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
    }
    with tempfile.TemporaryDirectory() as scratch:
        if not args.skip_quality:
            print(f"quality: STS-B {args.split}, {len(rows)} pairs", flush=True)
            # a folder of exports per model: two of one arch would write over each other's
            models = args.model or [UNTRAINED]
            result["quality"] = [quality(spec, rows, Path(scratch) / str(i)) for i, spec in enumerate(models)]
        if not args.skip_speed:
            result["speed"] = speed(stsb_rows("test"), Path(scratch), args.rounds, args.num_sentences, args.num_pairs)
    result["machine"]["load_average_end"] = os.getloadavg()
    write_results(args.results, result)
    print(f"load average {result['machine']['load_average_start']} -> {result['machine']['load_average_end']}")
    print(f"results written to {args.results}")


if __name__ == "__main__":
    main(sys.argv[1:])
