"""Teachers' sentence embeddings and their cache (sts_models/teacher_embeddings.py), on a tiny siamese model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sts_models import get_model_class
from sts_models.artifacts import folder_fingerprint
from sts_models.teacher_embeddings import cached_sentence_embeddings, teacher_device

SENTENCES = ["A man plays a guitar.", "A woman slices an onion.", "A dog runs on the grass.", "Two kids play."]


@pytest.fixture(scope="module")
def teacher_dir(tiny_encoder_dir, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("siamese-teacher")
    get_model_class("siamese").from_encoder(tiny_encoder_dir).save_pretrained(folder)
    return str(folder)


def embed(teacher_dir: str, cache_dir, calls: list, sentences=SENTENCES, bf16: bool = False):
    """`cached_sentence_embeddings` of the teacher, counting in `calls` each time it loads the model."""

    def load():
        calls.append(1)
        return get_model_class("siamese").from_pretrained(teacher_dir)

    return cached_sentence_embeddings(
        teacher_dir, folder_fingerprint(teacher_dir), sentences, load, str(cache_dir), bf16=bf16
    )


def test_a_teacher_embeds_once_and_the_cache_is_read_after(teacher_dir, tmp_path):
    calls = []
    first, info = embed(teacher_dir, tmp_path, calls)
    assert first.shape[0] == len(SENTENCES) and not info["reused"] and info["embedding_seconds"] >= 0
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    again, info = embed(teacher_dir, tmp_path, calls)
    assert info["reused"] and np.array_equal(again, first) and len(calls) == 1  # the model is not even loaded
    assert not list(tmp_path.glob("*partial*"))


def test_other_sentences_or_precision_get_a_file_of_their_own(teacher_dir, tmp_path):
    calls = []
    cases = [(SENTENCES, False), (SENTENCES[:3], False), (SENTENCES, True)]
    files = {embed(teacher_dir, tmp_path, calls, sentences, bf16)[1]["cache_file"] for sentences, bf16 in cases}
    assert len(files) == 3 and len(calls) == 3


@pytest.mark.parametrize("damage", ["bytes", "data", "rows", "no-checksum"])
def test_a_damaged_cache_file_is_embedded_again(teacher_dir, tmp_path, damage):
    import safetensors.numpy

    calls = []
    first, info = embed(teacher_dir, tmp_path, calls)
    if damage == "bytes":  # the header
        with open(info["cache_file"], "r+b") as handle:
            handle.write(b"\xff" * 16)
    elif damage == "data":  # the last embedding's bytes: NaN, the header intact
        with open(info["cache_file"], "r+b") as handle:
            handle.seek(-16, 2)
            handle.write(b"\xff" * 16)
    elif damage == "no-checksum":  # a file without the checksum of its embeddings (an earlier version's)
        safetensors.numpy.save_file(
            {"embeddings": first}, info["cache_file"], metadata={"info": '{"embedding_seconds": 1.0}'}
        )
    else:  # a whole file of other rows under this name
        safetensors.numpy.save_file(
            {"embeddings": first[:2]}, info["cache_file"], metadata={"info": '{"embedding_seconds": 1.0}'}
        )
    repaired, info = embed(teacher_dir, tmp_path, calls)
    assert not info["reused"] and len(calls) == 2 and np.allclose(repaired, first, atol=1e-6)


def test_a_teacher_with_non_finite_embeddings_is_refused_in_one_line(teacher_dir, tmp_path):
    from sts_models.errors import STSUserError

    def load():
        model = get_model_class("siamese").from_pretrained(teacher_dir)
        model.encoder.embeddings.word_embeddings.weight.data.fill_(float("nan"))  # diverged
        return model

    with pytest.raises(STSUserError, match="gives non-finite embeddings"):
        cached_sentence_embeddings(teacher_dir, "diverged", SENTENCES, load, str(tmp_path))
    assert not list(tmp_path.iterdir())  # nothing cached


def test_use_cpu_keeps_the_teacher_on_the_cpu_beside_a_gpu(teacher_dir, tmp_path, monkeypatch):
    """`--use_cpu` (`use_cpu=True`) embeds on the CPU also where a GPU is there, which is used otherwise."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert teacher_device() == "cuda" and teacher_device(use_cpu=True) == "cpu"
    devices = []

    def load():
        model = get_model_class("siamese").from_pretrained(teacher_dir)
        to = model.to
        model.to = lambda device, *args, **kwargs: devices.append(str(device)) or to(device, *args, **kwargs)
        return model

    cached_sentence_embeddings(teacher_dir, "on-the-cpu", SENTENCES, load, str(tmp_path), use_cpu=True)
    assert devices == ["cpu"]
