"""ONNX export and ONNX Runtime serving (sts_models.backends.onnx, export_onnx.py) on tiny random encoders."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

import sts_models
from sts_models.errors import STSUserError

pytest.importorskip("onnxruntime")

from sts_models.backends.onnx import (  # noqa: E402
    ONNX_CONFIG_NAME,
    ORTSTSModel,
    ORTSTSRegressionModel,
    ORTSTSSiameseModel,
    export_onnx,
)


@pytest.fixture(scope="module")
def export_script():
    from sts_models.cli import export

    return export


@pytest.fixture(scope="module", params=list(sts_models.ARCHITECTURES))
def exported(request, tiny_encoder_dir, tmp_path_factory):
    """A tiny model of each arch and its float32 and int8 exports (made once per arch)."""
    torch.manual_seed(0)
    model = sts_models.get_model_class(request.param).from_encoder(tiny_encoder_dir).eval()
    folder = tmp_path_factory.mktemp(f"onnx-{request.param}")
    export_onnx(model, folder / "float32")
    export_onnx(model, folder / "int8", quantize="int8")
    return model, folder / "float32", folder / "int8"


def pairs_of(stsb_pairs, limit=None):
    return [(a, b) for a, b, _ in stsb_pairs[:limit]]


def test_float32_export_scores_like_pytorch(exported, stsb_pairs):
    model, float32, _ = exported
    onnx_model = ORTSTSModel.from_pretrained(float32)
    assert type(onnx_model).config_class is type(model.config)
    pairs = pairs_of(stsb_pairs)
    np.testing.assert_allclose(onnx_model.predict(pairs, batch_size=8), model.predict(pairs, batch_size=8), atol=1e-4)
    record = json.loads((float32 / ONNX_CONFIG_NAME).read_text())
    assert record["quantize"] is None and record["arch"] == model.config.arch and not record["optimize"]


def test_int8_export_ranks_pairs_like_pytorch(exported, stsb_pairs):
    model, _, int8 = exported
    pairs = pairs_of(stsb_pairs)
    expected = model.predict(pairs)
    # a handful of pairs whose PyTorch scores are at least a fifth of the score spread apart
    chosen, last = [], -np.inf
    for index in np.argsort(expected):
        if expected[index] >= last + np.ptp(expected) / 5:
            chosen.append(index)
            last = expected[index]
    assert len(chosen) >= 4
    scores = ORTSTSModel.from_pretrained(int8).predict([pairs[i] for i in chosen])
    assert list(np.argsort(scores)) == list(range(len(chosen)))
    assert json.loads((int8 / ONNX_CONFIG_NAME).read_text())["quantize"] == "int8"
    assert (int8 / "model.onnx").stat().st_size < (int8.parent / "float32" / "model.onnx").stat().st_size


def test_padding_does_not_change_scores(exported, stsb_pairs):
    """A pair scores the same alone, beside much longer pairs, and (for `cross`, in the graph itself) with
    extra padding on both sentences behind its attention masks."""
    model, float32, _ = exported
    onnx_model = ORTSTSModel.from_pretrained(float32)
    pairs = pairs_of(stsb_pairs, 8)
    long_pair = (" ".join(a for a, _ in pairs), " ".join(b for _, b in pairs))
    alone = np.array([onnx_model.predict([pair])[0] for pair in pairs[:3]])
    np.testing.assert_allclose(onnx_model.predict([*pairs[:3], long_pair])[:3], alone, atol=1e-5)
    if model.config.arch != "cross":
        return
    features = onnx_model.tokenize([a for a, _ in pairs[:3]], [b for _, b in pairs[:3]])
    _, tight = next(onnx_model.sorted_batches(features, 8))
    padded = dict(tight)
    for suffix, extra in (("_1", 7), ("_2", 11)):
        padded[f"input_ids{suffix}"] = torch.nn.functional.pad(tight[f"input_ids{suffix}"], (0, extra))
        padded[f"attention_mask{suffix}"] = torch.nn.functional.pad(tight[f"attention_mask{suffix}"], (0, extra))
    np.testing.assert_allclose(onnx_model.batch_scores(padded), onnx_model.batch_scores(tight), atol=1e-6)


@pytest.mark.parametrize("exported", ["siamese"], indirect=True)
def test_siamese_encode_and_search_match_pytorch(exported, stsb_pairs):
    model, float32, _ = exported
    onnx_model = ORTSTSModel.from_pretrained(float32)
    assert isinstance(onnx_model, ORTSTSSiameseModel)
    sentences = [s for pair in pairs_of(stsb_pairs, 12) for s in pair]
    np.testing.assert_allclose(onnx_model.encode(sentences), model.encode(sentences), atol=1e-4)
    assert onnx_model.encode(sentences[0]).shape == (model.hidden_size,)
    normalized = onnx_model.encode(sentences[:4], normalize_embeddings=True, convert_to_tensor=True)
    assert isinstance(normalized, torch.Tensor)
    np.testing.assert_allclose(normalized.norm(dim=-1).numpy(), 1.0, atol=1e-5)
    # a random tiny encoder's embeddings are close together: compare scores, not the order of near-ties
    ours = onnx_model.semantic_search(sentences[:3], sentences, top_k=4)
    theirs = model.semantic_search(sentences[:3], sentences, top_k=4)
    np.testing.assert_allclose(
        [[h["score"] for h in hits] for hits in ours], [[h["score"] for h in hits] for hits in theirs], atol=1e-4
    )
    mined, expected = onnx_model.paraphrase_mining(sentences, top_k=2), model.paraphrase_mining(sentences, top_k=2)
    np.testing.assert_allclose([score for score, *_ in mined[:10]], [score for score, *_ in expected[:10]], atol=1e-4)
    np.testing.assert_allclose(onnx_model.similarity(normalized, normalized).diagonal().numpy(), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "arch, options",
    [
        ("bert", {"symmetric": True}),
        ("siamese", {"head": "mlp", "pooling": "max", "normalize_embeddings": True}),
        ("cross", {"cosine_skip": True, "pooling": "cls"}),
    ],
)
def test_options_and_ahead_of_time_fusion(arch, options, tiny_encoder_dir, stsb_pairs, tmp_path):
    torch.manual_seed(0)
    model = sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir, **options).train()
    attention = model.encoder.config._attn_implementation
    pairs = pairs_of(stsb_pairs, 16)
    onnx_model = ORTSTSModel.from_pretrained(export_onnx(model, tmp_path / "onnx", optimize=True))
    # ONNX Runtime's ahead-of-time transformer fusion recognized the encoder
    fused = json.loads((tmp_path / "onnx" / ONNX_CONFIG_NAME).read_text())["files"]["model.onnx"]["fused_operators"]
    assert {"Attention", "EmbedLayerNormalization", "SkipLayerNormalization"} <= set(fused)
    # exported in eval mode, on eager attention; the model is left as it was
    assert model.training and all(m.training for m in model.modules())
    assert model.encoder.config._attn_implementation == attention
    np.testing.assert_allclose(onnx_model.predict(pairs, batch_size=5), model.predict(pairs), atol=1e-4)
    if arch == "bert":  # both orders read, as the PyTorch model does: symmetric scores
        swapped = [(b, a) for a, b in pairs]
        np.testing.assert_allclose(onnx_model.predict(swapped), onnx_model.predict(pairs), atol=1e-6)


def test_round_trip_from_a_saved_folder_through_the_script(
    arch, tiny_encoder_dir, stsb_pairs, tmp_path, export_script
):
    torch.manual_seed(0)
    sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved" / "onnx.py").exists()  # the model code saved for remote loading stays ONNX-free
    model = AutoModel.from_pretrained(tmp_path / "saved")
    export_script.main([str(tmp_path / "saved"), str(tmp_path / "onnx")])
    onnx_model = ORTSTSModel.from_pretrained(tmp_path / "onnx")
    pairs = pairs_of(stsb_pairs, 8)
    np.testing.assert_allclose(onnx_model.predict(pairs), model.predict(pairs), atol=1e-4)
    assert {p.name for p in (tmp_path / "onnx").iterdir()} >= {"config.json", ONNX_CONFIG_NAME, "model.onnx"}
    assert "auto_map" not in json.loads((tmp_path / "onnx" / "config.json").read_text())


def test_the_script_exports_weights_stored_in_half_precision(tiny_encoder_dir, stsb_pairs, tmp_path, export_script):
    """Encoders stored in float16 are common on the Hub: the command exports them in float32, as the API asks."""
    torch.manual_seed(0)
    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    model.half().save_pretrained(tmp_path / "saved-fp16")
    export_script.main([str(tmp_path / "saved-fp16"), str(tmp_path / "onnx")])
    pairs = pairs_of(stsb_pairs, 8)
    expected = AutoModel.from_pretrained(tmp_path / "saved-fp16").float().predict(pairs)
    np.testing.assert_allclose(ORTSTSModel.from_pretrained(tmp_path / "onnx").predict(pairs), expected, atol=1e-4)


def test_the_pooling_of_a_trained_model_is_not_changed_on_export(tiny_encoder_dir, tmp_path, export_script):
    sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    with pytest.raises(STSUserError, match="--pooling is for a plain encoder: .* is a trained siamese model"):
        export_script.main([str(tmp_path / "saved"), str(tmp_path / "onnx"), "--pooling", "cls"])
    assert not (tmp_path / "onnx").exists()
    export_script.main(
        [tiny_encoder_dir, str(tmp_path / "onnx"), "--arch", "siamese", "--pooling", "cls"]
    )  # an encoder
    assert json.loads((tmp_path / "onnx" / "config.json").read_text())["pooling"] == "cls"


def test_script_errors_are_one_line(export_script, tiny_encoder_dir, tmp_path, capsys):
    with pytest.raises(STSUserError, match="model folder not found"):
        export_script.main([str(tmp_path / "missing"), str(tmp_path / "out")])
    with pytest.raises(STSUserError, match="choose an architecture with --arch"):
        export_script.main([tiny_encoder_dir, str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        export_script.main([tiny_encoder_dir, str(tmp_path / "out"), "--quantize", "int4"])
    assert exit_info.value.code == 2 and "invalid choice: 'int4'" in capsys.readouterr().err
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    with pytest.raises(STSUserError, match="occupied is not empty"):  # before the model loads (it is not there)
        export_script.main([str(tmp_path / "missing"), str(occupied)])


def test_bad_arguments(tiny_encoder_dir, tmp_path):
    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(STSUserError, match="quantize must be None or one of int8, got 'INT8'"):
        export_onnx(model, tmp_path / "x", quantize="INT8")
    with pytest.raises(STSUserError, match="export_onnx needs an STS model, got BertModel"):
        export_onnx(model.encoder, tmp_path / "x")
    with pytest.raises(STSUserError, match=r"export a float32 model \(this one is torch.float16\)"):
        export_onnx(model.half(), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(STSUserError, match="not an exported ONNX model"):
        ORTSTSModel.from_pretrained(tiny_encoder_dir)


def test_quantization_options_add_to_the_defaults(tiny_encoder_dir, tmp_path, monkeypatch):
    import onnxruntime.quantization as ort_quantization

    calls = []
    real = ort_quantization.quantize_dynamic

    @functools.wraps(real)
    def recording(source, target, **settings):
        calls.append(settings)
        return real(source, target, **settings)

    monkeypatch.setattr(ort_quantization, "quantize_dynamic", recording)
    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    options = {"reduce_range": False, "extra_options": {"ActivationSymmetric": True}}
    export_onnx(model, tmp_path / "int8", quantize="int8", quantization_options=options)
    (settings,) = calls
    assert settings["reduce_range"] is False and settings["per_channel"] is True
    # the caller's extra option is added; the default symmetric weights stay
    assert settings["extra_options"]["ActivationSymmetric"] is True
    assert settings["extra_options"]["WeightSymmetric"] is True
    assert options == {"reduce_range": False, "extra_options": {"ActivationSymmetric": True}}  # not changed


@pytest.mark.parametrize(
    "quantize, options, message",
    [
        (
            "int8",
            {"reduce_ranges": False},
            r"quantization_options: 'reduce_ranges' is not an argument of .*quantize_dynamic",
        ),
        ("int8", {"model_output": "x.onnx"}, "quantization_options: 'model_output' is not an argument"),
        (
            "int8",
            {"extra_options": ["WeightSymmetric"]},
            r"quantization_options\['extra_options'\] must be a dict, got list",
        ),
        (
            "int8",
            [("reduce_range", False)],
            "quantization_options must be a dict of quantize_dynamic arguments, got list",
        ),
        (None, {"reduce_range": False}, "quantization_options are used only with quantize='int8'"),
    ],
)
def test_bad_quantization_options_are_refused_before_export(quantize, options, message, tiny_encoder_dir, tmp_path):
    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(STSUserError, match=message):
        export_onnx(model, tmp_path / "x", quantize=quantize, quantization_options=options)
    assert not (tmp_path / "x").exists()


def test_one_provider_may_be_a_string_and_session_options_are_checked(exported, stsb_pairs):
    """`providers="CPUExecutionProvider"` was split into letters (ONNX Runtime warned of 'C', 'P', ... and ran on its
    default); a dict of session options ended in an AttributeError inside ONNX Runtime."""
    _, folder, _ = exported
    pairs = pairs_of(stsb_pairs, 4)
    model = ORTSTSModel.from_pretrained(folder, providers="CPUExecutionProvider")
    assert all(session.get_providers() == ["CPUExecutionProvider"] for session in model.sessions.values())
    np.testing.assert_allclose(model.predict(pairs), ORTSTSModel.from_pretrained(folder).predict(pairs), atol=1e-7)
    message = "session_options must be an onnxruntime.SessionOptions, got dict"
    with pytest.raises(STSUserError, match=message):
        ORTSTSModel.from_pretrained(folder, session_options={"intra_op_num_threads": 1})


def test_a_class_loads_only_its_arch(exported):
    model, float32, _ = exported
    if model.config.arch == "bert":
        assert isinstance(ORTSTSRegressionModel.from_pretrained(float32), ORTSTSRegressionModel)
    else:
        with pytest.raises(STSUserError, match="not one for ORTSTSRegressionModel"):
            ORTSTSRegressionModel.from_pretrained(float32)


@pytest.mark.parametrize("blocked", ["onnxruntime", "onnx"])
def test_missing_dependency_names_the_extra(blocked, monkeypatch, tiny_encoder_dir, tmp_path):
    monkeypatch.setitem(sys.modules, blocked, None)  # `import onnxruntime` now raises ImportError
    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(ImportError, match=r"pip install 'sts-models\[onnx\]'"):
        export_onnx(model, tmp_path / "x")
    with pytest.raises(ImportError, match=r"pip install 'sts-models\[onnx\]'"):
        ORTSTSModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_onnx_predict_refuses_a_batch_size_below_one(exported, stsb_pairs, batch_size):
    onnx_model = ORTSTSModel.from_pretrained(exported[1])
    with pytest.raises(STSUserError, match=f"batch_size must be a positive integer, got {batch_size}"):
        onnx_model.predict(pairs_of(stsb_pairs, 4), batch_size=batch_size)


@pytest.mark.parametrize("exported", ["siamese"], indirect=True)
def test_a_damaged_graph_file_is_refused_naming_it(exported, tmp_path):
    import shutil

    folder = shutil.copytree(exported[2], tmp_path / "int8")
    record = json.loads((folder / ONNX_CONFIG_NAME).read_text())
    assert {name: entry["checksum"][:9] for name, entry in record["files"].items()} == {
        "model.onnx": "xxh3_128:",
        "head.onnx": "xxh3_128:",
    }
    original = (folder / "model.onnx").read_bytes()
    damaged = bytearray(original)
    middle = len(damaged) // 2
    damaged[middle : middle + 16] = bytes(byte ^ 0xFF for byte in damaged[middle : middle + 16])
    (folder / "model.onnx").write_bytes(damaged)
    with pytest.raises(
        STSUserError, match=r"model\.onnx does not match the checksum recorded in .*onnx_config\.json"
    ) as info:
        ORTSTSModel.from_pretrained(folder)
    assert "\n" not in str(info.value) and "head.onnx" not in str(info.value)
    # exported before checksums were recorded: loads unchecked
    (folder / "model.onnx").write_bytes(original)
    for entry in record["files"].values():
        del entry["checksum"]
    (folder / ONNX_CONFIG_NAME).write_text(json.dumps(record))
    assert ORTSTSModel.from_pretrained(folder).encode(["a man"]).shape == (1, exported[0].hidden_size)
    (folder / ONNX_CONFIG_NAME).write_bytes(b"\xff\xfe" + json.dumps(record).encode())  # not UTF-8
    with pytest.raises(STSUserError, match=r"onnx_config\.json is not UTF-8 text \(byte 1\): export the model again"):
        ORTSTSModel.from_pretrained(folder)


@pytest.mark.parametrize("exported", ["siamese"], indirect=True)
def test_a_config_missing_or_of_another_export_is_refused(exported, tmp_path):
    """The folder's config.json is read with the graphs: missing, it gave a bare traceback; copied from another
    arch's export, scoring failed with a numpy shape error."""
    import shutil

    folder = shutil.copytree(exported[1], tmp_path / "siamese")
    (folder / "config.json").unlink()
    with pytest.raises(STSUserError, match=r"siamese has no config\.json beside its graphs: export the model again"):
        ORTSTSModel.from_pretrained(folder)
    bert_config = sts_models.STSRegressionConfig(encoder=exported[0].config.encoder.to_dict())
    bert_config.save_pretrained(folder)
    with pytest.raises(
        STSUserError, match=r"config\.json is a 'bert' model's config, and the graphs of .* a 'siamese'"
    ):
        ORTSTSModel.from_pretrained(folder)


@pytest.mark.parametrize("exported", ["siamese"], indirect=True)
def test_a_damaged_export_record_is_refused_in_one_line(exported, tmp_path):
    """A format_version that is no number stopped predict with a TypeError; a record without a graph the arch runs
    loaded, and scoring then failed with a KeyError."""
    import shutil

    folder = shutil.copytree(exported[1], tmp_path / "siamese")
    record = json.loads((folder / ONNX_CONFIG_NAME).read_text())
    (folder / ONNX_CONFIG_NAME).write_text(json.dumps({**record, "format_version": "1"}))
    with pytest.raises(STSUserError, match=r"onnx_config\.json: format_version '1' is no number: export the model"):
        ORTSTSModel.from_pretrained(folder)
    files = {name: entry for name, entry in record["files"].items() if name != "head.onnx"}
    (folder / ONNX_CONFIG_NAME).write_text(json.dumps({**record, "files": files}))
    with pytest.raises(STSUserError, match=r"onnx_config\.json lists no head\.onnx, which a 'siamese' model runs"):
        ORTSTSModel.from_pretrained(folder)


def test_a_model_whose_graph_needs_external_data_is_not_exported(tiny_encoder_dir, tmp_path, monkeypatch):
    """Past 2 GB the exporter keeps the weights in files beside the graph; the export copied the graph alone and
    wrote a folder that looked whole and could not be loaded. Such a graph is refused, and nothing is written."""
    import onnx

    export = torch.onnx.export

    def export_with_external_data(module, inputs, path, **kwargs):  # as the exporter writes a model over 2 GB
        export(module, inputs, path, **kwargs)
        graph = onnx.load(path)
        onnx.save_model(graph, path, save_as_external_data=True, location="weights.data", size_threshold=0)

    monkeypatch.setattr(torch.onnx, "export", export_with_external_data)
    model = sts_models.STSRegressionModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(STSUserError, match=r"^the exported model\.onnx keeps its weights in files beside the graph"):
        export_onnx(model, tmp_path / "big")
    assert not (tmp_path / "big").exists()


def test_the_check_refuses_nan_and_measures_large_outputs_relatively():
    """A graph giving NaN was 0.0 from PyTorch (max(worst, nan) kept worst); a module whose own outputs are not
    finite has nothing to be checked against; outputs in the thousands are measured relative to their size."""
    from sts_models.backends.onnx_check import max_difference

    class Session:
        def __init__(self, output):
            self.output = output

        def get_inputs(self):
            return [type("Input", (), {"name": "x"})]

        def run(self, _, feed):
            return [np.full((feed["x"].shape[0], 1), self.output, np.float32)]

    graph = {"module": torch.nn.Linear(1, 1), "inputs": {"x": torch.ones(3, 1)}, "outputs": ["logits"]}
    torch.nn.init.constant_(graph["module"].weight, 0.0)
    torch.nn.init.constant_(graph["module"].bias, 2000.0)
    assert max_difference(Session(np.nan), graph) == float("inf")
    assert max_difference(Session(2000.1), graph) == pytest.approx(0.1 / 2000, rel=1e-3)  # 0.1 absolute
    torch.nn.init.constant_(graph["module"].bias, float("nan"))
    with pytest.raises(STSUserError, match="the model's own logits on the check pairs are not finite"):
        max_difference(Session(1.0), graph)


def test_a_model_with_nan_weights_is_not_exported(tiny_encoder_dir, tmp_path):
    model = sts_models.STSRegressionModel.from_encoder(tiny_encoder_dir)
    with torch.no_grad():
        model.encoder.encoder.layer[0].output.LayerNorm.weight[0] = float("nan")
    with pytest.raises(STSUserError, match="its weights are not finite"):
        export_onnx(model, tmp_path / "nan")
    assert not (tmp_path / "nan").exists()


@pytest.mark.parametrize("exported", ["siamese"], indirect=True)
def test_an_index_serves_the_model_and_its_export_not_another_model(exported, stsb_pairs, tiny_encoder_dir):
    pytest.importorskip("faiss")
    model, float32, int8 = exported
    sentences = list(dict.fromkeys(s for pair in pairs_of(stsb_pairs, 20) for s in pair))
    by_model = model.build_index(sentences, precision="float32", n_lists=1)
    for folder in (float32, int8):
        onnx_model = ORTSTSModel.from_pretrained(folder)
        assert onnx_model.model_fingerprint() == model.model_fingerprint() == by_model.model_fingerprint
        assert len(onnx_model.semantic_search(sentences[:3], corpus_index=by_model, top_k=2)) == 3
        by_export = onnx_model.build_index(sentences, precision="float32", n_lists=1)
        assert by_export.model_fingerprint == by_model.model_fingerprint
        assert len(model.paraphrase_mining(corpus_index=by_export, top_k=2)) > 0
    other = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir, pooling="max").eval()
    with pytest.raises(
        STSUserError, match=r"^corpus_index was built by another model .*: rebuild it with build_index"
    ):
        onnx_model.semantic_search(sentences[:3], corpus_index=other.build_index(sentences, precision="float32"))


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor:UserWarning")  # DeBERTa's own code, traced
def test_an_encoder_without_token_types_exports_with_the_inputs_its_graph_reads(
    tiny_encoder_dir, stsb_pairs, tmp_path
):
    """DeBERTa-v3 reads no `token_type_ids` (`type_vocab_size=0`) while its tokenizer makes them: the exporter drops
    that input, and the export's check and record follow the graph (they fed it, and failed with a traceback)."""
    import shutil

    from transformers import DebertaV2Config, DebertaV2Model

    encoder = tmp_path / "deberta"
    torch.manual_seed(0)
    vocab_size = len((Path(tiny_encoder_dir) / "vocab.txt").read_text().split())
    config = DebertaV2Config(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=128, type_vocab_size=0,
    )  # fmt: skip
    DebertaV2Model(config).save_pretrained(encoder)
    for name in ("vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
        if (Path(tiny_encoder_dir) / name).exists():
            shutil.copy(Path(tiny_encoder_dir) / name, encoder / name)
    model = sts_models.get_model_class("bert").from_encoder(str(encoder)).eval()
    assert "token_type_ids" in model.tokenizer("a", "b")
    onnx_model = ORTSTSModel.from_pretrained(export_onnx(model, tmp_path / "onnx", quantize="int8"))
    record = json.loads((tmp_path / "onnx" / ONNX_CONFIG_NAME).read_text())
    assert record["files"]["model.onnx"]["inputs"] == ["input_ids", "attention_mask"]
    pairs = pairs_of(stsb_pairs, 8)
    assert np.isfinite(onnx_model.predict(pairs)).all()


def test_onnx_runtimes_temporary_files_stay_inside_the_export(tiny_encoder_dir, tmp_path, monkeypatch):
    """The fusion and the int8 quantizer make temporary folders of their own: they are made in the folder being
    written, which a failed or killed export removes, never in the system's temporary folder."""
    import tempfile

    from onnxruntime.quantization import shape_inference
    from onnxruntime.transformers import optimizer

    seen = []

    def spy(original):
        def call(*args, **kwargs):
            seen.append(tempfile.gettempdir())
            return original(*args, **kwargs)

        return call

    monkeypatch.setattr(shape_inference, "quant_pre_process", spy(shape_inference.quant_pre_process))
    monkeypatch.setattr(optimizer, "optimize_model", spy(optimizer.optimize_model))
    system = tempfile.gettempdir()
    model = sts_models.get_model_class("bert").from_encoder(tiny_encoder_dir).eval()
    export_onnx(model, tmp_path / "int8", quantize="int8")
    export_onnx(model, tmp_path / "fused", optimize=True)
    assert len(seen) == 2
    assert all(folder.startswith(str(tmp_path)) and ".partial" in folder for folder in seen), seen
    assert tempfile.gettempdir() == system  # put back


def test_the_current_folder_is_not_replaced(tiny_encoder_dir, tmp_path, monkeypatch, export_script, capsys):
    """Replacing the folder the process works in would leave it, and the user's shell, in a deleted folder."""
    from sts_models.sentence_transformers_export import save_sentence_transformer

    model = sts_models.get_model_class("siamese").from_encoder(tiny_encoder_dir).eval()
    (tmp_path / "here" / "below").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here" / "below")
    for target in (".", str(tmp_path / "here")):
        with pytest.raises(STSUserError, match="is the current folder or holds it"):
            export_onnx(model, target)
        with pytest.raises(STSUserError, match="is the current folder or holds it"):
            save_sentence_transformer(model, target)
    model.save_pretrained(tmp_path / "saved")
    assert export_script.cli([str(tmp_path / "saved"), "."]) == 1
    assert "is the current folder or holds it" in capsys.readouterr().err
    assert list((tmp_path / "here").iterdir()) == [tmp_path / "here" / "below"]
    assert not list((tmp_path / "here" / "below").iterdir())


def test_a_damaged_tokenizer_file_is_refused_naming_it(exported, tmp_path):
    import shutil

    _, float32, _ = exported
    shutil.copytree(float32, tmp_path / "copy")
    (tmp_path / "copy" / "tokenizer.json").write_text("{not json")
    with pytest.raises(STSUserError, match=r"copy/tokenizer.json is not valid JSON \(Expecting property name"):
        ORTSTSModel.from_pretrained(tmp_path / "copy")
