"""`save_sentence_transformer` writes a folder that sentence-transformers loads with the same embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from sts_models import STSSiameseModel


@pytest.mark.parametrize("options", [{}, {"pooling": "max", "normalize_embeddings": True}, {"pooling": "cls"}])
def test_export_round_trip(tiny_encoder_dir, stsb_pairs, tmp_path, options):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, **options)
    model.save_sentence_transformer(str(tmp_path / "st"))
    loaded = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    sentences = [s for a, b, _ in stsb_pairs[:16] for s in (a, b)]
    ours, theirs = model.encode(sentences), loaded.encode(sentences)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.9999
    if options.get("normalize_embeddings"):
        np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
    assert loaded.max_seq_length == model.config.max_seq_length


def test_mlp_head_cannot_be_exported(tiny_encoder_dir, tmp_path):
    with pytest.raises(ValueError, match="Only the cosine head"):
        STSSiameseModel.from_encoder(tiny_encoder_dir, head="mlp").save_sentence_transformer(str(tmp_path))
