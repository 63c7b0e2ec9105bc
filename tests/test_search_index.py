"""Approximate search (`EmbeddingIndex`, faiss) against exact search on small clustered corpora."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from sts_models import EmbeddingIndex, STSSiameseModel
from sts_models.errors import STSUserError
from sts_models.hub import DEFAULT_MODEL, bundled_model_path
from sts_models.search import paraphrase_mining_embeddings, semantic_search

faiss = pytest.importorskip("faiss")

DIMENSION = 64


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """Tiny corpora gain nothing from threads, and OpenMP threads that spin-wait for a busy core slow them 5x."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def clustered(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    """`n` noisy copies of random centers: structure like real embeddings, unlike uniform random vectors."""
    return (centers[rng.integers(0, len(centers), n)] + 0.4 * rng.standard_normal((n, centers.shape[1]))).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((40, DIMENSION))
    return clustered(rng, centers, 1_500), clustered(rng, centers, 50)


def ids(hits: list[list[dict]]) -> list[list[int]]:
    return [[hit["corpus_id"] for hit in row] for row in hits]


def recall(found: list[list[dict]], exact: list[list[dict]]) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids(found), ids(exact))]))


def built(corpus: np.ndarray, chunk: int = 400, **options) -> EmbeddingIndex:
    index = EmbeddingIndex(DIMENSION, **options)
    for start in range(0, len(corpus), chunk):
        index.add(corpus[start : start + chunk])
    return index


def test_float32_visiting_every_cell_is_exact(data):
    corpus, queries = data
    index = built(corpus, precision="float32", n_lists=8, n_probe=8)
    found, exact = index.search(queries, top_k=10), semantic_search(queries, corpus, top_k=10)
    assert len(index) == len(corpus) and ids(found) == ids(exact)
    np.testing.assert_allclose(
        [hit["score"] for row in found for hit in row], [hit["score"] for row in exact for hit in row], atol=1e-5
    )


@pytest.mark.parametrize("precision, min_recall, score_error", [("float32", 0.9, 1e-5), ("int8", 0.9, 0.01)])
def test_approximate_recall_and_scores(data, precision, min_recall, score_error):
    corpus, queries = data
    index = built(corpus, precision=precision, n_lists=32, n_probe=4)
    found, exact = index.search(queries, top_k=10), semantic_search(queries, corpus, top_k=10)
    assert recall(found, exact) >= min_recall
    exact_scores = semantic_search(queries, corpus, top_k=len(corpus))
    for row, full in zip(found, exact_scores):
        cosine = {hit["corpus_id"]: hit["score"] for hit in full}
        assert [hit["score"] for hit in row] == sorted((hit["score"] for hit in row), reverse=True)
        for hit in row:
            assert hit["score"] == pytest.approx(cosine[hit["corpus_id"]], abs=score_error)


def test_binary_rescores_with_the_float_query(data):
    corpus, queries = data
    # every cell visited and every embedding a candidate: the ranking is exactly that of the rescoring,
    # the cosine of the float query and the ±1 code of each corpus embedding
    index = built(corpus, precision="binary", n_lists=8, n_probe=8, rescore_multiplier=len(corpus))
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    codes = np.where(corpus > 0, 1.0, -1.0) / math.sqrt(DIMENSION)
    for query, row in zip(unit, index.search(queries, top_k=10)):
        scores = codes @ query
        np.testing.assert_allclose([hit["score"] for hit in row], np.sort(scores)[::-1][:10], atol=1e-5)
        np.testing.assert_allclose([hit["score"] for hit in row], scores[[hit["corpus_id"] for hit in row]], atol=1e-5)
    # 64 sign bits keep the clusters but blur the order within them: far from exact, far above chance
    index.rescore_multiplier = 4
    assert recall(index.search(queries, top_k=10), semantic_search(queries, corpus, top_k=10)) >= 0.35


def test_chunks_and_training_size_give_the_same_index(data):
    corpus, queries = data
    at_once = built(corpus, chunk=len(corpus), precision="int8", n_lists=16)
    chunked = built(corpus, chunk=100, precision="int8", n_lists=16)
    assert at_once.search(queries) == chunked.search(queries)
    # trained on the first 800 embeddings, the rest added to the trained index
    early = built(corpus, chunk=100, precision="int8", n_lists=16, training_size=800)
    assert early.index is not None and len(early) == len(corpus)
    assert recall(early.search(queries), semantic_search(queries, corpus)) >= 0.9
    # expected_size too small: the training buffer grows up to training_size
    grown = built(corpus, chunk=70, precision="int8", n_lists=16, training_size=800, expected_size=100)
    assert grown.search(queries) == early.search(queries)


def test_default_cells_small_corpus_and_top_k_beyond_size(data):
    corpus, queries = data
    index = built(corpus[:100], precision="float32")
    hits = index.search(queries[:2], top_k=500)
    assert index.n_lists == 2  # 4·√100 = 40 cells, but at least 39 training embeddings per cell
    assert [len(row) for row in hits] == [100, 100]
    assert EmbeddingIndex(DIMENSION).search(queries[:2]) == [[], []]
    assert EmbeddingIndex(DIMENSION).paraphrase_mining() == []
    assert index.search([]) == [] and index.search(queries[:0]) == []  # no query finds nothing, as semantic_search


class SearchSpy:
    """A faiss index whose searches record how many hits they ask for (faiss allocates that many per query)."""

    def __init__(self, inner):
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "asked", [])

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        setattr(self.inner, name, value)

    def search(self, queries, k):
        self.asked.append(k)
        return self.inner.search(queries, k)


@pytest.mark.parametrize("precision", ["float32", "binary"])
def test_a_top_k_past_the_index_size_asks_faiss_for_no_more_hits_than_it_holds(data, precision):
    corpus, queries = data
    index = built(corpus[:100], precision=precision)
    expected = index.search(queries[:3], top_k=100)
    index.index = spy = SearchSpy(index.index)
    assert index.search(queries[:3], top_k=10**9) == expected
    assert spy.asked and max(spy.asked) <= 100


@pytest.mark.parametrize("precision", ["float32", "int8", "binary"])
def test_save_load_round_trip(data, tmp_path, precision):
    corpus, queries = data
    index = built(corpus, precision=precision, n_lists=16, n_probe=3)
    index.save(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["index.faiss", "index_config.json"]
    config = json.loads((tmp_path / "index_config.json").read_text())
    assert config["precision"] == precision and config["size"] == len(corpus) and config["n_probe"] == 3
    loaded = EmbeddingIndex.load(tmp_path)
    assert (loaded.precision, loaded.n_lists, loaded.n_probe, len(loaded)) == (precision, 16, 3, len(corpus))
    assert loaded.search(queries) == index.search(queries)
    assert loaded.paraphrase_mining(top_k=3, max_pairs=20) == index.paraphrase_mining(top_k=3, max_pairs=20)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_paraphrase_mining_agrees_with_exact(data, precision):
    corpus, _ = data
    index = built(corpus, precision=precision, n_lists=16, n_probe=4)
    found = index.paraphrase_mining(top_k=5, max_pairs=100)
    exact = paraphrase_mining_embeddings(corpus, top_k=5, max_pairs=100)
    assert len({pair[1:] for pair in found} & {pair[1:] for pair in exact}) >= 90
    assert all(i < j for _, i, j in found)
    assert [score for score, _, _ in found] == sorted((score for score, _, _ in found), reverse=True)


def test_model_builds_searches_mines_and_saves_beside_itself(stsb_pairs, tmp_path):
    # the real all-MiniLM-L6-v2: a random tiny encoder maps all sentences almost onto one direction
    model = STSSiameseModel.from_encoder(bundled_model_path(DEFAULT_MODEL)).eval()
    sentences = list(dict.fromkeys(sentence for pair in stsb_pairs for sentence in pair[:2]))
    index = model.build_index(sentences, precision="float32", chunk_size=30, n_lists=2, n_probe=2)
    assert len(index) == len(sentences)
    embeddings = model.encode(sentences)
    exact = semantic_search(embeddings[:5], embeddings, top_k=3)
    found = model.semantic_search(sentences[:5], corpus_index=index, top_k=3)
    assert ids(found) == ids(exact) and [row[0]["corpus_id"] for row in found] == list(range(5))
    exact_pairs = paraphrase_mining_embeddings(embeddings, top_k=3, max_pairs=20)
    found_pairs = model.paraphrase_mining(sentences, top_k=3, max_pairs=20, corpus_index=index)
    assert [pair[1:] for pair in found_pairs] == [pair[1:] for pair in exact_pairs]
    assert [pair[0] for pair in found_pairs] == pytest.approx([pair[0] for pair in exact_pairs], abs=1e-5)
    assert model.paraphrase_mining(corpus_index=index, top_k=3, max_pairs=20) == found_pairs
    int8 = EmbeddingIndex(len(embeddings[0]), precision="int8", n_lists=4, n_probe=2).add(embeddings)
    assert recall(int8.search(embeddings), semantic_search(embeddings, embeddings)) > 0.9

    model.save_pretrained(tmp_path)
    index.save(tmp_path)
    reloaded = STSSiameseModel.from_pretrained(tmp_path).eval()
    assert reloaded.semantic_search(sentences[:5], corpus_index=EmbeddingIndex.load(tmp_path), top_k=3) == found


@pytest.mark.parametrize("precision", ["float32", "binary"])
def test_numpy_integers_work_as_python_integers(data, tmp_path, precision):
    """Sizes given as numpy integers (from an array's shape or arithmetic) are read as ints: faiss refuses numpy
    integers, and the saved JSON could not hold them."""
    corpus, queries = data
    given = {"n_lists": 8, "n_probe": 4, "rescore_multiplier": 4, "training_size": 1_000, "expected_size": 1_500}
    plain = EmbeddingIndex(DIMENSION, precision=precision, **given).add(corpus)
    numpy = EmbeddingIndex(DIMENSION, precision=precision, **{k: np.int64(v) for k, v in given.items()}).add(corpus)
    assert numpy.search(queries, top_k=np.int64(3)) == plain.search(queries, top_k=3)
    mined = numpy.paraphrase_mining(top_k=np.int64(2), max_pairs=np.int64(50), query_chunk_size=np.int64(500))
    assert mined == plain.paraphrase_mining(top_k=2, max_pairs=50, query_chunk_size=500)
    numpy.save(tmp_path)
    assert EmbeddingIndex.load(tmp_path).search(queries, top_k=3) == plain.search(queries, top_k=3)


def test_mining_an_index_takes_sentences_of_any_iterable(stsb_pairs):
    model = STSSiameseModel.from_encoder(bundled_model_path(DEFAULT_MODEL)).eval()
    sentences = list(dict.fromkeys(sentence for pair in stsb_pairs for sentence in pair[:2]))[:60]
    index = model.build_index(sentences, precision="float32", n_lists=2, n_probe=2)
    from_list = model.paraphrase_mining(sentences, top_k=2, max_pairs=10, corpus_index=index)
    assert model.paraphrase_mining(iter(sentences), top_k=2, max_pairs=10, corpus_index=index) == from_list


def test_bad_input_is_named(data, tmp_path, tiny_encoder_dir):
    corpus, queries = data
    with pytest.raises(STSUserError, match="precision must be one of float32, int8, binary, got 'int4'"):
        EmbeddingIndex(DIMENSION, precision="int4")
    with pytest.raises(STSUserError, match="n_probe must be a positive integer, got 0"):
        EmbeddingIndex(DIMENSION, n_probe=0)
    binary = built(corpus[:200], precision="binary")
    for multiplier in [0, 2.5]:  # set after construction: a ZeroDivisionError or TypeError in the search
        binary.rescore_multiplier = multiplier
        with pytest.raises(STSUserError, match=f"rescore_multiplier must be a positive integer, got {multiplier}"):
            binary.search(queries, top_k=3)
        with pytest.raises(STSUserError, match=f"rescore_multiplier must be a positive integer, got {multiplier}"):
            binary.save(tmp_path / "bad-index")  # it would save an index that does not load
        assert not (tmp_path / "bad-index").exists()
    index = built(corpus[:200], precision="float32")
    for top_k in [0, -3, 2.5]:
        with pytest.raises(STSUserError, match=f"top_k must be a positive integer, got {top_k}"):
            index.search(queries, top_k=top_k)
    with pytest.raises(
        STSUserError, match=r"embeddings have shape \(3, 5\); the index holds embeddings of dimension 64"
    ):
        index.add(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(STSUserError, match=r"query_embeddings have shape \(2, 8\)"):
        index.search(np.zeros((2, 8), dtype=np.float32))
    # rows of no values are refused, not taken for an empty input (nothing added, no query answered)
    with pytest.raises(STSUserError, match=r"embeddings have shape \(3, 0\): 3 row\(s\) of no values \(dimension 0\)"):
        index.add(np.zeros((3, 0), dtype=np.float32))
    with pytest.raises(STSUserError, match=r"query_embeddings have shape \(2, 0\): 2 row\(s\) of no values"):
        index.search(np.zeros((2, 0), dtype=np.float32))
    assert index.search(np.zeros((0, DIMENSION), dtype=np.float32)) == []  # an empty input: no query
    with pytest.raises(STSUserError, match="n_lists=50 needs at least as many embeddings; the index has 20"):
        built(corpus[:20], n_lists=50).search(queries)
    bad = corpus[:3].copy()
    bad[1, 4], bad[2, 0] = np.nan, np.inf
    pending = EmbeddingIndex(DIMENSION, precision="float32", n_lists=1)  # untrained: faiss would fail later
    for add in (index.add, pending.add):  # faiss would store them, or fail in training when searched
        with pytest.raises(STSUserError, match="^embeddings row 1 holds NaN or infinite values$"):
            add(bad)
    assert len(index) == 200 and len(pending) == 0
    with pytest.raises(STSUserError, match="^query_embeddings row 2 holds NaN or infinite values$"):
        index.search(bad[[0, 0, 2]])
    with pytest.raises(STSUserError, match="query_embeddings must be numbers, got text: encode sentences first"):
        index.search(["A man plays a guitar."])
    with pytest.raises(STSUserError, match="the index is empty"):
        EmbeddingIndex(DIMENSION).save(tmp_path / "empty")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(STSUserError, match="a-file is a file: the index is saved into a folder"):
        index.save(tmp_path / "a-file")
    with pytest.raises(STSUserError, match="no embedding index in .*: index_config.json not found"):
        EmbeddingIndex.load(tmp_path)
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(STSUserError, match="exactly one of corpus and corpus_index"):
        model.semantic_search(["a"])
    for chunk_size in [0, -1, 2.5]:  # -1 built an empty index, whose search found nothing
        with pytest.raises(STSUserError, match=f"^chunk_size must be a positive integer, got {chunk_size}$"):
            model.build_index(["a b", "c d", "e f"], precision="float32", chunk_size=chunk_size)
    small = model.build_index(["a b", "c d", "e f"], precision="float32")
    assert len(model.build_index(["a b", "c d", "e f"], precision="float32", expected_size=1000)) == 3
    with pytest.raises(STSUserError, match="corpus_index holds 3 embeddings, but 2 sentences were given"):
        model.paraphrase_mining(["a b", "c d"], corpus_index=small)


def test_missing_faiss_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now raises ImportError
    with pytest.raises(ImportError, match=r"install it with pip install 'sts-models\[faiss\]'"):
        EmbeddingIndex(DIMENSION)


def sentences_of(stsb_pairs, limit: int = 50) -> list[str]:
    return list(dict.fromkeys(sentence for pair in stsb_pairs for sentence in pair[:2]))[:limit]


def test_an_index_built_by_another_model_is_refused_in_one_line(stsb_pairs, tiny_encoder_dir, tmp_path):
    import torch

    torch.manual_seed(0)
    model = STSSiameseModel.from_encoder(tiny_encoder_dir).eval()
    other = STSSiameseModel.from_encoder(tiny_encoder_dir, pooling="max").eval()  # the same width, another model
    sentences = sentences_of(stsb_pairs)
    index = model.build_index(sentences, precision="float32", n_lists=1)
    assert index.model_fingerprint == model.model_fingerprint() != other.model_fingerprint()
    refused = r"was built by another model \(fingerprint [0-9a-f]{16}\), not this one .*: rebuild it with build_index$"
    with pytest.raises(STSUserError, match="^corpus_index " + refused) as info:
        other.semantic_search(sentences[:3], corpus_index=index)
    assert "\n" not in str(info.value)
    with pytest.raises(STSUserError, match=refused):
        other.paraphrase_mining(corpus_index=index, top_k=2)
    index.save(tmp_path / "index")
    assert (
        json.loads((tmp_path / "index" / "index_config.json").read_text())["model_fingerprint"]
        == index.model_fingerprint
    )
    with pytest.raises(STSUserError, match=r"^the index in .*index_config\.json " + refused):
        other.semantic_search(sentences[:3], corpus_index=EmbeddingIndex.load(tmp_path / "index"))

    # the same model, also once saved and loaded from its folder (its config then names its path and code)
    expected = model.semantic_search(sentences[:5], corpus_index=index, top_k=3)
    model.save_pretrained(tmp_path / "model")
    reloaded = STSSiameseModel.from_pretrained(tmp_path / "model").eval()
    loaded = EmbeddingIndex.load(tmp_path / "index")
    assert reloaded.semantic_search(sentences[:5], corpus_index=loaded, top_k=3) == expected
    assert reloaded.paraphrase_mining(corpus_index=loaded, top_k=2) == model.paraphrase_mining(
        corpus_index=index, top_k=2
    )
    # an index of raw embeddings records no model: any model may query it
    raw = EmbeddingIndex(model.hidden_size, precision="float32", n_lists=1).add(other.encode(sentences))
    assert raw.model_fingerprint is None and len(model.semantic_search(sentences[:2], corpus_index=raw)) == 2


def test_the_fingerprint_is_cached_until_a_weight_changes(tiny_encoder_dir, monkeypatch):
    import torch

    from sts_models import inference

    computed = []
    fingerprint = inference.model_fingerprint
    monkeypatch.setattr(inference, "model_fingerprint", lambda m: computed.append(1) or fingerprint(m))
    model = STSSiameseModel.from_encoder(tiny_encoder_dir).eval()
    first = model.model_fingerprint()
    assert model.model_fingerprint() == first and len(computed) == 1  # cached
    index = model.build_index(["a man plays a guitar", "a woman is cooking", "a dog runs"], precision="float32")
    assert index.model_fingerprint == first and len(computed) == 1
    weight = model.encoder.embeddings.word_embeddings.weight
    value = weight[5, 0].item()
    with torch.no_grad():
        weight[5, 0] += 0.5  # in place: the tensor's version counter moves
    assert model.model_fingerprint() != first and len(computed) == 2
    with pytest.raises(STSUserError, match="was built by another model"):
        model.semantic_search(["a man"], corpus_index=index)
    with torch.no_grad():
        weight[5, 0] = value
    assert model.model_fingerprint() == first
    weight.data[5, 0] += 0.5  # through .data: no version counter; the cache is cleared by hand
    model.clear_fingerprint_cache()
    assert model.model_fingerprint() != first


def saved_index(folder, corpus, **options):
    built(corpus, precision="int8", n_lists=16, **options).save(folder)
    return folder / "index.faiss", folder / "index_config.json"


def test_a_damaged_index_file_is_refused_naming_it(data, tmp_path):
    index_path, config_path = saved_index(tmp_path, data[0])
    config = json.loads(config_path.read_text())
    assert config["checksums"]["index.faiss"].startswith("xxh3_128:") and config["model_fingerprint"] is None
    EmbeddingIndex.load(tmp_path)
    content = bytearray(index_path.read_bytes())
    assert content[-200:] != bytes(200)
    content[-200:] = bytes(200)
    index_path.write_bytes(content)
    with pytest.raises(
        STSUserError, match=r"index\.faiss does not match the checksum recorded in .*index_config\.json"
    ):
        EmbeddingIndex.load(tmp_path)


def test_an_index_file_with_another_config_is_refused(data, tmp_path):
    corpus, _ = data
    index_path, _ = saved_index(tmp_path / "a", corpus)
    other_index, _ = saved_index(tmp_path / "b", corpus[:1000])
    index_path.write_bytes(other_index.read_bytes())  # a new index.faiss beside the old index_config.json
    with pytest.raises(STSUserError, match=r"/a/index\.faiss does not match the checksum") as info:
        EmbeddingIndex.load(tmp_path / "a")
    assert "\n" not in str(info.value)


def test_a_save_stopped_between_the_renames_is_refused(data, tmp_path, monkeypatch):
    """The config is renamed last: stopped before it, the folder holds the new index.faiss and the old config."""
    import os

    corpus, queries = data
    saved_index(tmp_path, corpus)
    renames = []

    def replace_then_stop(source, target):
        if renames:
            raise KeyboardInterrupt
        renames.append(target)
        os.rename(source, target)

    monkeypatch.setattr(os, "replace", replace_then_stop)
    with pytest.raises(KeyboardInterrupt):
        built(corpus[:1000], precision="int8", n_lists=16).save(tmp_path)
    monkeypatch.undo()
    assert [os.path.basename(path) for path in renames] == ["index.faiss"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["index.faiss", "index_config.json"]
    with pytest.raises(STSUserError, match=r"index\.faiss does not match the checksum"):
        EmbeddingIndex.load(tmp_path)
    # what a killed save leaves (a partial file of a process that is gone) is removed by the next save
    (tmp_path / ".index.faiss.partial-999999999").write_bytes(b"left")
    built(corpus, precision="int8", n_lists=16).save(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["index.faiss", "index_config.json"]
    assert len(EmbeddingIndex.load(tmp_path).search(queries[:2])) == 2


def test_a_bad_or_old_config(data, tmp_path, caplog):
    corpus, queries = data
    index_path, config_path = saved_index(tmp_path, corpus)
    config = json.loads(config_path.read_text())
    config_path.write_text('{"engine": "faiss", "dimension": 64,')
    with pytest.raises(STSUserError, match=r"index_config\.json is not valid JSON \(.*line 1\)"):
        EmbeddingIndex.load(tmp_path)
    config_path.write_text(json.dumps({key: value for key, value in config.items() if key != "n_lists"}))
    with pytest.raises(STSUserError, match=r"index_config\.json misses n_lists: save the index again"):
        EmbeddingIndex.load(tmp_path)
    config_path.write_text(json.dumps({**config, "n_probe": 0}))
    with pytest.raises(STSUserError, match=r"index_config\.json: n_probe must be a positive integer, got 0"):
        EmbeddingIndex.load(tmp_path)
    # saved before checksums and fingerprints were recorded: loads, with a warning
    old = {key: value for key, value in config.items() if key not in ("checksums", "model_fingerprint")}
    config_path.write_text(json.dumps(old))
    with caplog.at_level("WARNING", logger="sts_models.search_index"):
        loaded = EmbeddingIndex.load(tmp_path)
    assert "records no checksum of index.faiss" in caplog.text and loaded.model_fingerprint is None
    assert loaded.search(queries[:3]) == built(corpus, precision="int8", n_lists=16).search(queries[:3])
    # a config whose dimension is not the index file's (the checksum covers the index file only)
    config_path.write_text(json.dumps({**config, "dimension": config["dimension"] // 2}))
    with pytest.raises(STSUserError, match=r"holds embeddings of dimension \d+, but .*index_config\.json says \d+"):
        EmbeddingIndex.load(tmp_path)


def test_the_checksum_reads_the_file_by_blocks(tmp_path, monkeypatch):
    import xxhash

    from sts_models import artifacts

    path = tmp_path / "file"
    path.write_bytes(np.random.default_rng(0).bytes(10_000))
    whole = artifacts.file_checksum(path)
    reads = []

    class Spy:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            reads.append(size)
            return self.handle.read(size)

    monkeypatch.setattr(artifacts, "CHECKSUM_BLOCK", 4096)
    monkeypatch.setattr(artifacts, "open", lambda *args, **kwargs: Spy(open(*args, **kwargs)), raising=False)
    assert artifacts.file_checksum(path) == whole == f"xxh3_128:{xxhash.xxh3_128(path.read_bytes()).hexdigest()}"
    assert reads == [4096, 4096, 4096, 4096]  # three blocks and the empty read that ends the loop
