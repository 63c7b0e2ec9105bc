"""Approximate semantic search for corpora too large to scan exactly: an inverted-file index of embeddings
on faiss (the optional `faiss` extra), stored as float32, int8 or binary codes, built chunk by chunk and
saved beside the model.

The exact `sts_models.search.semantic_search` compares each query with every corpus embedding. An
`EmbeddingIndex` clusters the corpus into `n_lists` cells (faiss' IVF) and compares a query only with the
embeddings of its `n_probe` nearest cells, stored compressed:

| precision | faiss index | bytes per 384-dim embedding | scores |
|---|---|---|---|
| `float32` | `IVF{n},Flat` | 1,536 | cosine |
| `int8` | `IVF{n},SQ8` (8-bit scalar quantizer, per-dimension ranges) | 384 | inner product of the float query and the decoded embedding: the cosine, up to the decoding error (it may pass 1 by a little) |
| `binary` | `BIVF{n}` (sign bits, Hamming distance) | 48, and 48 more kept for rescoring | candidates rescored: cosine of the float query and the ±1 code |

A saved index records the checksum of `index.faiss` and the fingerprint of the model that built it (`build_index`):
`load` refuses a damaged `index.faiss`, or one saved with another `index_config.json`, and the model's
`semantic_search` and `paraphrase_mining` refuse an index that another model built, each in one line.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from .artifacts import check_file_checksum, file_checksum, partial_file, write_json
from .errors import STSUserError, check_positive_int
from .search import best_pairs, check_finite_rows, embedding_rows, to_tensor

logger = logging.getLogger(__name__)

PRECISIONS = ("float32", "int8", "binary")
INDEX_FILE = "index.faiss"
CONFIG_FILE = "index_config.json"
SEARCH_SETTINGS = ("n_probe", "rescore_multiplier")  # searches read them: a user may set them on the index
REQUIRED_KEYS = ("engine", "precision", "dimension", "n_lists", "n_probe", "rescore_multiplier")


def import_faiss():
    """The faiss module, or a one-line ImportError that names the extra to install."""
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "EmbeddingIndex needs faiss, which is not installed; install it with pip install 'sts-models[faiss]'"
        ) from None
    return faiss


def default_n_lists(expected_size: int, num_training: int) -> int:
    """faiss' rule of thumb, 4·√n cells, but at least 39 training vectors per cell (k-means needs them)."""
    return max(1, min(round(4 * math.sqrt(expected_size)), num_training // 39))


class EmbeddingIndex:
    """An approximate nearest-neighbour index of sentence embeddings for cosine similarity (faiss IVF).

    Add embeddings with `add` (chunk by chunk: a large corpus never has to be in memory as float32 at
    once), then `search` them like `sts_models.search.semantic_search`, mine paraphrases among them, and
    `save` / `load` the index beside the model. `STSSiameseModel.build_index` encodes and adds sentences.

    Args:
        dimension: embedding size (the model's hidden size).
        precision: how embeddings are stored: `"float32"`, `"int8"` (8-bit scalar quantization, 4x smaller)
            or `"binary"` (sign bits, 32x smaller; candidates are rescored with the float query).
        n_lists: how many cells the corpus is clustered into; default 4·√(expected size), at least 39
            training vectors per cell.
        n_probe: how many cells a query visits (more: higher recall, slower). Can be changed at any time.
        rescore_multiplier: `binary` only: `top_k * rescore_multiplier` candidates by Hamming distance
            are rescored with the float query.
        training_size: the first `training_size` embeddings train the cells (k-means) and the int8 ranges;
            they are held until then (or until the first `search`, `paraphrase_mining` or `save`), later
            ones are added at once.
        expected_size: corpus size, to choose `n_lists` (default: the number of training embeddings).

    Embeddings are L2-normalized when added and queried, so scores are cosine similarities, approximate
    for `int8` and `binary` (see the module docstring). Corpus ids are positions in the order of `add`.
    """

    def __init__(
        self,
        dimension: int,
        precision: str = "int8",
        n_lists: int | None = None,
        n_probe: int = 16,
        rescore_multiplier: int = 4,
        training_size: int = 100_000,
        expected_size: int | None = None,
    ):
        if precision not in PRECISIONS:
            raise STSUserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        # (as Python ints: a numpy integer would reach faiss, which refuses it, and the saved JSON)
        self.dimension = check_positive_int("dimension", dimension)
        self.n_probe = check_positive_int("n_probe", n_probe)
        self.rescore_multiplier = check_positive_int("rescore_multiplier", rescore_multiplier)
        self.training_size = check_positive_int("training_size", training_size)
        self.n_lists = None if n_lists is None else check_positive_int("n_lists", n_lists)
        self.expected_size = None if expected_size is None else check_positive_int("expected_size", expected_size)
        self.faiss = import_faiss()
        self.precision = precision
        self.index = None  # the faiss index, created once there is enough data to train it
        # normalized embeddings waiting for training: rows [:_num_pending] of a buffer allocated once
        # (untouched rows of np.empty take no memory), so training needs no second copy of them
        self._pending: np.ndarray | None = None
        self._num_pending = 0
        self._codes: list[np.ndarray] = []  # binary only: the packed sign bits, for rescoring
        # the fingerprint of the model whose embeddings these are (`build_index`), None when unknown; saved
        self.model_fingerprint: str | None = None
        self.loaded_from: Path | None = None  # the index_config.json that `load` read, to name in errors

    def __len__(self) -> int:
        return (self.index.ntotal if self.index is not None else 0) + self._num_pending

    def __repr__(self) -> str:
        return (
            f"EmbeddingIndex(precision={self.precision!r}, dimension={self.dimension}, size={len(self)}, "
            f"n_lists={self.n_lists}, n_probe={self.n_probe})"
        )

    @property
    def factory_string(self) -> str:
        """The faiss `index_factory` description of the index (`n_lists` is set once it is trained)."""
        if self.precision == "binary":
            return f"BIVF{self.n_lists}"
        return f"IVF{self.n_lists},{'SQ8' if self.precision == 'int8' else 'Flat'}"

    def _normalized(self, embeddings, name: str) -> np.ndarray:
        """`(n, dimension)` float32, L2-normalized; one embedding becomes one row, an empty input none (`embedding_rows`)."""
        vectors = embedding_rows(to_tensor(embeddings, name), name).detach().cpu().float().numpy()
        if len(vectors) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        if vectors.shape[1] != self.dimension:
            raise STSUserError(
                f"{name} have shape {tuple(vectors.shape)}; the index holds embeddings of dimension {self.dimension}"
            )
        # faiss would store them, or fail when it trains
        check_finite_rows(np.isfinite(vectors).all(axis=1), f"{name} row")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _binary_codes(self, vectors: np.ndarray) -> np.ndarray:
        return np.packbits(vectors > 0, axis=1)

    def add(self, embeddings) -> EmbeddingIndex:
        """Add a chunk of embeddings `(n, dimension)` (numpy or torch); their ids follow those added before."""
        vectors = self._normalized(embeddings, "embeddings")
        while self.index is None and len(vectors):
            if self._pending is None:
                rows = min(self.training_size, self.expected_size or self.training_size)
                self._pending = np.empty((rows, self.dimension), dtype=np.float32)
            elif self._num_pending == len(self._pending):  # more than expected_size: grow towards training_size
                grown = np.empty((min(self.training_size, 2 * len(self._pending)), self.dimension), dtype=np.float32)
                grown[: self._num_pending] = self._pending
                self._pending = grown
            taken = min(len(vectors), len(self._pending) - self._num_pending)
            self._pending[self._num_pending : self._num_pending + taken] = vectors[:taken]
            self._num_pending += taken
            vectors = vectors[taken:]
            if self._num_pending == self.training_size:
                self._train()
        if len(vectors):
            self._add_trained(vectors)
        return self

    def _train(self) -> None:
        """Create the faiss index, train it on the pending embeddings and add them."""
        training = self._pending[: self._num_pending]
        if self.n_lists is None:
            self.n_lists = default_n_lists(self.expected_size or len(training), len(training))
        elif self.n_lists > len(training):
            raise STSUserError(
                f"n_lists={self.n_lists} needs at least as many embeddings; the index has {len(training)}"
            )
        faiss = self.faiss
        if self.precision == "binary":
            index = faiss.index_binary_factory(8 * math.ceil(self.dimension / 8), self.factory_string)
            index.train(self._binary_codes(training))
        else:
            index = faiss.index_factory(self.dimension, self.factory_string, faiss.METRIC_INNER_PRODUCT)
            index.train(training)
        self.index = index
        self._add_trained(training)
        self._pending, self._num_pending = None, 0

    def _add_trained(self, vectors: np.ndarray) -> None:
        if self.precision == "binary":
            codes = self._binary_codes(vectors)
            self.index.add(codes)
            self._codes.append(codes)
        else:
            self.index.add(vectors)

    def _ready(self) -> bool:
        """Train on what is pending, if anything; False when the index holds nothing."""
        if self.index is None and self._num_pending:
            self._train()
        return self.index is not None and self.index.ntotal > 0

    def _all_codes(self) -> np.ndarray:
        if len(self._codes) > 1:
            self._codes = [np.concatenate(self._codes)]
        return self._codes[0]

    def _search_arrays(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and corpus ids `(len(queries), top_k)` of normalized queries, best first; id -1 pads
        rows with fewer hits."""
        self.index.nprobe = check_positive_int("n_probe", self.n_probe)  # (an attribute the user may have set)
        top_k = min(top_k, self.index.ntotal)  # faiss allocates (queries, top_k) results, also past the index's size
        if self.precision != "binary":
            return self.index.search(queries, top_k)
        rescore_multiplier = check_positive_int("rescore_multiplier", self.rescore_multiplier)  # (also user-set)
        candidates = min(top_k * rescore_multiplier, self.index.ntotal)
        all_scores, all_ids = [], []
        # rescore a block of queries at a time: (queries, candidates, dimension) floats stay near 100 MB
        block = max(1, 65_536 // candidates)
        for start in range(0, len(queries), block):
            floats = queries[start : start + block]
            _, ids = self.index.search(self._binary_codes(floats), candidates)
            codes = self._all_codes()[np.maximum(ids, 0)]
            signs = np.unpackbits(codes, axis=-1)[..., : self.dimension].astype(np.float32) * 2 - 1
            scores = np.einsum("qd,qkd->qk", floats, signs) / math.sqrt(self.dimension)
            scores[ids < 0] = -np.inf
            order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
            all_scores.append(np.take_along_axis(scores, order, axis=1))
            all_ids.append(np.take_along_axis(ids, order, axis=1))
        return np.concatenate(all_scores), np.concatenate(all_ids)

    def search(self, query_embeddings, top_k: int = 10) -> list[list[dict[str, float | int]]]:
        """For each query embedding, the `top_k` nearest corpus entries `{"corpus_id", "score"}`, best first
        (the format of `sts_models.search.semantic_search`); fewer when the index holds fewer."""
        top_k = check_positive_int("top_k", top_k)
        queries = self._normalized(query_embeddings, "query_embeddings")
        if not (len(queries) and self._ready()):
            return [[] for _ in queries]
        scores, ids = self._search_arrays(queries, top_k)
        return [
            [{"corpus_id": int(i), "score": float(s)} for s, i in zip(row_scores, row_ids) if i >= 0]
            for row_scores, row_ids in zip(scores, ids)
        ]

    def _stored(self, start: int, count: int) -> np.ndarray:
        """Embeddings `start:start+count` as the index holds them (decoded), normalized."""
        if self.precision == "binary":
            codes = self._all_codes()[start : start + count]
            vectors = np.unpackbits(codes, axis=1)[:, : self.dimension].astype(np.float32) * 2 - 1
        else:
            vectors = self.index.reconstruct_n(start, count)
        return self._normalized(vectors, "stored embeddings")

    def paraphrase_mining(
        self, top_k: int = 100, max_pairs: int = 500_000, query_chunk_size: int = 5_000
    ) -> list[tuple[float, int, int]]:
        """The most similar pairs `(score, i, j)` (i < j) among the indexed embeddings, best first: each
        embedding's `top_k` nearest others, pooled and deduplicated, at most `max_pairs` (as
        `sts_models.search.paraphrase_mining_embeddings`). The queries are the stored embeddings, decoded."""
        top_k, max_pairs = check_positive_int("top_k", top_k), check_positive_int("max_pairs", max_pairs)
        query_chunk_size = check_positive_int("query_chunk_size", query_chunk_size)
        if not self._ready():
            return []
        found_scores, found_first, found_second = [], [], []
        size = self.index.ntotal
        for start in range(0, size, query_chunk_size):
            queries = self._stored(start, min(query_chunk_size, size - start))
            scores, neighbours = self._search_arrays(queries, top_k + 1)
            rows = np.broadcast_to(np.arange(start, start + len(queries))[:, None], neighbours.shape)
            keep = (neighbours != rows) & (neighbours >= 0)  # a sentence is not its own paraphrase
            keep &= np.cumsum(keep, axis=1) <= top_k  # top_k others, also where the search missed the sentence itself
            found_scores.append(scores[keep])
            found_first.append(np.minimum(rows, neighbours)[keep])
            found_second.append(np.maximum(rows, neighbours)[keep])
        return best_pairs(
            np.concatenate(found_scores), np.concatenate(found_first), np.concatenate(found_second), size, max_pairs
        )

    def save(self, folder: str | Path) -> None:
        """Write `index.faiss` (faiss' own format) and `index_config.json` into `folder`, e.g. the model's.

        The config records the checksum of `index.faiss` and, when known, the model's fingerprint. Both files are
        written under temporary names in `folder` and renamed into place, the config last: a save that is killed
        leaves the earlier index, or a new `index.faiss` beside the earlier config, which `load` refuses.
        """
        if not self._ready():
            raise STSUserError("the index is empty: add embeddings before saving it")
        # (attributes the user may have set, checked as `load` checks them: else a saved index that does not load)
        n_probe, rescore_multiplier = (check_positive_int(name, getattr(self, name)) for name in SEARCH_SETTINGS)
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise STSUserError(
                f"{folder} is a file: the index is saved into a folder (index.faiss, index_config.json)"
            )
        folder.mkdir(parents=True, exist_ok=True)
        with partial_file(folder / INDEX_FILE) as partial:
            if self.precision == "binary":
                self.faiss.write_index_binary(self.index, partial)
            else:
                self.faiss.write_index(self.index, partial)
            config = {
                "engine": "faiss",
                "engine_version": self.faiss.__version__,
                "index_file": INDEX_FILE,
                "index_factory": self.factory_string,
                "similarity": "cosine",
                "precision": self.precision,
                "dimension": self.dimension,
                "size": self.index.ntotal,
                "n_lists": self.n_lists,
                "n_probe": n_probe,
                "rescore_multiplier": rescore_multiplier,
                "checksums": {INDEX_FILE: file_checksum(partial)},
                "model_fingerprint": self.model_fingerprint,
            }
        write_json(str(folder / CONFIG_FILE), config, indent=2)  # last, and whole: the config vouches for the index

    @staticmethod
    def _read_config(config_path: Path) -> dict:
        """The content of `index_config.json`, checked to be a JSON object with the keys `load` needs."""
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise STSUserError(
                f"{config_path} is not valid JSON ({error.msg}, line {error.lineno}): save the index again"
            ) from None
        except UnicodeDecodeError:
            raise STSUserError(f"{config_path} is not valid JSON (not UTF-8 text): save the index again") from None
        if not isinstance(config, dict):
            raise STSUserError(f"{config_path} is not an index config (a JSON object): save the index again")
        missing = [key for key in REQUIRED_KEYS if key not in config]
        if missing:
            raise STSUserError(f"{config_path} misses {', '.join(missing)}: save the index again")
        return config

    @classmethod
    def load(cls, folder: str | Path) -> EmbeddingIndex:
        """The index that `save` wrote into `folder`, once `index.faiss` is checked against the checksum its config
        recorded (indexes saved by earlier versions record none: they load with a warning)."""
        folder = Path(folder)
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise STSUserError(f"no embedding index in {folder}: {CONFIG_FILE} not found")
        config = cls._read_config(config_path)
        index_file = str(config.get("index_file", INDEX_FILE))
        index_path = folder / index_file
        if config["engine"] != "faiss" or not index_path.is_file():
            raise STSUserError(f"{config_path} does not describe a faiss index file in {folder}")
        checksums = config.get("checksums")
        if isinstance(checksums, dict) and index_file in checksums:
            check_file_checksum(index_path, checksums[index_file], config_path, "save the index again")
        else:
            logger.warning(
                f"{config_path} records no checksum of {index_file} (saved by an earlier sts-models): it is loaded "
                "unchecked; save the index again to record one"
            )
        try:
            index = cls(
                config["dimension"],
                precision=config["precision"],
                n_lists=config["n_lists"],
                n_probe=config["n_probe"],
                rescore_multiplier=config["rescore_multiplier"],
            )
        except STSUserError as error:
            raise STSUserError(f"{config_path}: {error}") from None
        faiss = index.faiss
        try:
            if index.precision == "binary":
                index.index = faiss.read_index_binary(str(index_path))
                index._codes = [index.index.reconstruct_n(0, index.index.ntotal)]
            else:
                index.index = faiss.read_index(str(index_path))
        except RuntimeError as error:  # a damaged file saved without a checksum
            reason = " ".join(str(error).split())[:200]
            raise STSUserError(f"{index_path} cannot be read by faiss ({reason}): save the index again") from None
        expected = 8 * math.ceil(index.dimension / 8) if index.precision == "binary" else index.dimension
        if index.index.d != expected:
            raise STSUserError(
                f"{index_path} holds embeddings of dimension {index.index.d}, but {config_path} says "
                f"{index.dimension}: save the index again"
            )
        if index.index.ntotal != config.get("size", index.index.ntotal):
            raise STSUserError(
                f"{index_path} holds {index.index.ntotal} embeddings, but {config_path} says {config['size']}: "
                "save the index again"
            )
        index.model_fingerprint = config.get("model_fingerprint")
        index.loaded_from = config_path
        return index
