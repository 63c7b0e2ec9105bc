"""Semantic search and paraphrase mining against brute force, with chunks small enough to matter."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sts_models import STSSiameseModel
from sts_models.search import cos_sim, paraphrase_mining_embeddings, semantic_search


@pytest.fixture
def embeddings() -> torch.Tensor:
    return torch.randn(57, 8, generator=torch.Generator().manual_seed(0))


def brute_force_similarities(x: torch.Tensor) -> np.ndarray:
    x = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    return x @ x.T


def test_cos_sim(embeddings):
    np.testing.assert_allclose(
        cos_sim(embeddings, embeddings).numpy(), brute_force_similarities(embeddings), atol=1e-6
    )


@pytest.mark.parametrize("query_chunk_size, corpus_chunk_size", [(100, 500_000), (4, 10), (1, 3)])
def test_semantic_search_matches_brute_force(embeddings, query_chunk_size, corpus_chunk_size):
    queries, corpus = embeddings[:9], embeddings[9:]
    results = semantic_search(
        queries, corpus, top_k=5, query_chunk_size=query_chunk_size, corpus_chunk_size=corpus_chunk_size
    )
    full = cos_sim(queries, corpus).numpy()
    assert len(results) == 9
    for row, hits in zip(full, results):
        expected = np.argsort(-row)[:5]
        assert [hit["corpus_id"] for hit in hits] == expected.tolist()
        np.testing.assert_allclose([hit["score"] for hit in hits], row[expected], atol=1e-6)


def test_options_are_keywords_only(embeddings):
    """sentence-transformers' `util.semantic_search` takes the chunk sizes before `top_k`: a call written for it,
    with options by position, is refused rather than read as another `top_k`."""
    with pytest.raises(TypeError, match="positional argument"):
        semantic_search(embeddings[:2], embeddings, 100, 500_000, 5)
    with pytest.raises(TypeError, match="positional argument"):
        paraphrase_mining_embeddings(embeddings, 5_000, 100_000, 10)


@pytest.mark.parametrize("query_chunk_size, corpus_chunk_size", [(5_000, 100_000), (7, 11)])
def test_paraphrase_mining_matches_brute_force(embeddings, query_chunk_size, corpus_chunk_size):
    similarities = brute_force_similarities(embeddings)
    n = len(embeddings)
    # each sentence's 3 nearest others, pooled, deduplicated, best first
    expected = set()
    for i in range(n):
        others = [j for j in np.argsort(-similarities[i]) if j != i][:3]
        expected.update((min(i, j), max(i, j)) for j in others)
    pairs = paraphrase_mining_embeddings(
        embeddings, top_k=3, query_chunk_size=query_chunk_size, corpus_chunk_size=corpus_chunk_size
    )
    assert {(i, j) for _, i, j in pairs} == expected
    scores = [score for score, _, _ in pairs]
    assert scores == sorted(scores, reverse=True)
    for score, i, j in pairs:
        assert i < j and score == pytest.approx(similarities[i, j], abs=1e-6)
    # with top_k covering everything, the best pair overall comes first
    best = max(itertools.combinations(range(n), 2), key=lambda p: similarities[p])
    assert paraphrase_mining_embeddings(embeddings, top_k=n, max_pairs=1)[0][1:] == best


def test_search_inputs_of_every_form(tiny_encoder_dir):
    """No queries find nothing; one string or a generator is read as sentences; embeddings pass through."""
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    corpus = ["A dog runs.", "A man plays a guitar."]
    expected = model.semantic_search(["A man plays."], corpus)
    assert model.semantic_search([], corpus) == [] and model.paraphrase_mining([]) == []
    assert model.semantic_search("A man plays.", corpus) == expected
    assert model.semantic_search((s for s in ["A man plays."]), iter(corpus)) == expected
    # numpy arrays of strings (a pandas column's values), as encode takes them, are sentences, not embeddings
    for dtype in (None, object):
        assert model.semantic_search(np.array(["A man plays."], dtype), np.array(corpus, dtype)) == expected

    def flat(results):  # corpus ids and scores, in order, for pytest.approx
        return [value for row in results for entry in row for value in (entry["corpus_id"], entry["score"])]

    from_embeddings = model.semantic_search([model.encode("A man plays.")], model.encode(corpus))
    assert flat(from_embeddings) == pytest.approx(flat(expected))
    one = [entry for entry in expected[0] if entry["corpus_id"] == 0]  # a corpus of one string is one entry
    one = [0, one[0]["score"]]
    assert flat(model.semantic_search(["A man plays."], "A dog runs.")) == pytest.approx(one)


def test_model_search_and_mining_on_sentences(tiny_encoder_dir, stsb_pairs):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    sentences = [a for a, _, _ in stsb_pairs[:20]]
    embeddings = model.encode(sentences, convert_to_numpy=False)
    hits = model.semantic_search(sentences[:3], sentences, top_k=2)
    assert [h[0]["score"] for h in hits] == pytest.approx([1.0] * 3, abs=1e-5)  # each sentence finds itself
    assert hits == model.semantic_search(embeddings[:3], embeddings, top_k=2)
    assert model.paraphrase_mining(sentences, top_k=2) == paraphrase_mining_embeddings(embeddings, top_k=2)
    np.testing.assert_allclose(
        model.similarity(embeddings[:2], embeddings).numpy(), cos_sim(embeddings[:2], embeddings).numpy()
    )


def test_ranking_by_cosine_is_refused_for_the_mlp_head(tiny_encoder_dir):
    """The mlp head's scores are not the cosine of the embeddings: search, mining and `similarity` would rank
    otherwise than `predict`."""
    from sts_models.errors import STSUserError

    model = STSSiameseModel.from_encoder(tiny_encoder_dir, head="mlp")
    sentences = ["A man plays a guitar.", "A dog runs.", "A woman slices an onion."]
    embeddings = model.encode(sentences)
    calls = {
        "semantic_search": lambda: model.semantic_search(sentences[:1], sentences),
        "paraphrase_mining": lambda: model.paraphrase_mining(sentences),
        "similarity": lambda: model.similarity(embeddings, embeddings),
        "build_index": lambda: model.build_index(sentences),
    }
    for method, call in calls.items():
        with pytest.raises(STSUserError) as error:
            call()
        message = str(error.value)
        assert "\n" not in message and message.startswith(f"{method} ranks by the cosine of the embeddings")
    assert model.predict([(sentences[0], sentences[1])]).shape == (1,)  # scoring pairs stays


def test_a_list_of_embedding_tensors_is_stacked(embeddings):
    """As sentence-transformers' `semantic_search` takes it: one tensor per row."""
    expected = semantic_search(embeddings[:3], embeddings, top_k=4)
    assert semantic_search(list(embeddings[:3]), list(embeddings), top_k=4) == expected
    np.testing.assert_allclose(cos_sim(list(embeddings[:3]), embeddings).numpy(), cos_sim(embeddings[:3], embeddings))
