"""Inference written once: scoring pairs (`predict`) and encoding sentences (`encode`, search and mining), for the
PyTorch models and the ONNX Runtime models alike.

A class that mixes in `PairScorer` provides `tokenizer`, `config`, `device`, `encodes_pairs_jointly`,
`inference_mode()` (the context scoring runs in) and `batch_scores(batch)` (float32 scores on the 0-1 training
scale of one padded batch). `SentenceEncoder` adds `hidden_size`, `embed_batch(batch)` (float32 embeddings of one
padded batch) and `embedding_scores(embeddings_1, embeddings_2)` (0-1 scores of pairs of embeddings).

This file is copied beside the weights with the model code (`save_pretrained`): it imports only its siblings.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence, Sized
from contextlib import AbstractContextManager

import numpy as np
import torch
from tqdm.auto import tqdm

from .artifacts import model_fingerprint
from .data_collator import DataCollatorForSentencePairs, sequence_lengths
from .errors import (
    UNORDERED,
    NonFiniteScoresError,
    STSUserError,
    check_positive_int,
    check_sentence_pairs,
    check_sentences,
    refuse_unordered,
)
from .search import cos_sim, paraphrase_mining_embeddings, semantic_search, to_tensor
from .search_index import EmbeddingIndex
from .tokenization import SWAPPED, PairTokenizing

# Pairs (or sentences) that `predict` (or `encode`) tokenizes and scores at a time: memory stays flat past it.
CHUNK_SIZE = 10_000


def check_list_of_sentences(sentences) -> list[str]:
    """`sentences` as a checked list (`check_sentences`), refusing one string, which would be read as its
    characters."""
    if isinstance(sentences, str):
        raise STSUserError(f"sentences must be a list of strings, not one string: {sentences!r:.80}")
    return check_sentences(sentences)


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """Lists of `size` consecutive items (the last one shorter), read lazily from any iterable."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def progress_bar(total: int | None, batch_size: int, show_progress_bar: bool | None, desc: str, unit: str) -> tqdm:
    """The progress bar of `predict`/`encode` over `total` items: shown when asked, or by default past ten
    batches (or when the total is unknown)."""
    if show_progress_bar is None:
        show_progress_bar = total is None or total > 10 * batch_size
    return tqdm(total=total, desc=desc, unit=unit, disable=not show_progress_bar)


def split_swapped(batch: dict) -> tuple[dict, dict | None]:
    """A batch's inputs of the pairs as given and, when it has them, of the pairs in reverse order."""
    swapped = {key[: -len(SWAPPED)]: value for key, value in batch.items() if key.endswith(SWAPPED)}
    plain = {key: value for key, value in batch.items() if not key.endswith(SWAPPED)}
    return plain, swapped or None


class PairScorer(PairTokenizing):
    """`predict`: tokenization (`PairTokenizing`), length-sorted batches and chunked streaming around the
    `batch_scores` hook."""

    def inference_mode(self) -> AbstractContextManager:
        raise NotImplementedError

    def batch_scores(self, batch: dict) -> np.ndarray:
        """Float32 scores on the 0-1 training scale of one padded batch from `sorted_batches`, on the CPU."""
        raise NotImplementedError

    def encode(self, *args, **kwargs):
        """Only siamese models embed sentences on their own: the others score pairs (`predict`)."""
        raise STSUserError(
            f"encode needs a siamese model; this '{self.config.arch}' model scores pairs: use predict(pairs)"
        )

    def sorted_batches(
        self, features: dict[str, list], batch_size: int, progress: tqdm | None = None
    ) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """(indices, padded batch on the model's device) over tokenized `features`, longest inputs first.

        Sorting by token count keeps padding to a minimum; `progress` (a bar) advances by each batch's size.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        order = np.argsort([-length for length in sequence_lengths(features)], kind="stable")
        collator = DataCollatorForSentencePairs.for_tokenizer(self.tokenizer)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = collator([{key: values[i] for key, values in features.items()} for i in index])
            yield index, {key: value.to(self.device) for key, value in batch.items()}
            if progress is not None:
                progress.update(len(index))

    def score_pairs(self, pairs: list[tuple[str, str]], batch_size: int, progress: tqdm | None = None) -> np.ndarray:
        """Scores of checked pairs on the original range, tokenized together and batched by length."""
        scores = np.empty(len(pairs), dtype=np.float64)
        features = self.tokenize([a for a, _ in pairs], [b for _, b in pairs])
        for index, batch in self.sorted_batches(features, batch_size, progress):
            scores[index] = self.config.from_unit_range(self.batch_scores(batch).astype(np.float64))
        return scores

    def predict_chunks(
        self,
        sentence_pairs: Iterable[tuple[str, str]],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        chunk_size: int = CHUNK_SIZE,
        total: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Scores of `sentence_pairs` on the original range, `chunk_size` pairs at a time, in input order.

        Each chunk is tokenized, batched by length and scored before the next is read, so memory stays flat for a
        stream of any length (e.g. the rows of a file). `total` (the number of pairs, taken from `len` when there
        is one) sizes the progress bar, which shows past ten batches.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        if isinstance(sentence_pairs, (str, bytes, *UNORDERED)) or not isinstance(sentence_pairs, Iterable):
            check_sentence_pairs(sentence_pairs)  # refuses it whole, before chunking would split a string or a set
        if total is None and isinstance(sentence_pairs, Sized):
            total = len(sentence_pairs)
        normalize = self.normalized_text()
        with progress_bar(total, batch_size, show_progress_bar, "Scoring pairs", "pair") as progress:
            start = 0
            for chunk in chunked(sentence_pairs, chunk_size):
                pairs = check_sentence_pairs(chunk, start=start, normalize=normalize)
                with self.inference_mode():
                    scores = self.score_pairs(pairs, batch_size, progress)
                if not np.isfinite(scores).all():  # NaN or infinite weights (a diverged run): no score is right
                    bad = int(np.flatnonzero(~np.isfinite(scores))[0])
                    name = getattr(self, "name_or_path", "") or type(self).__name__
                    raise NonFiniteScoresError(name, start + bad, float(scores[bad]))
                yield scores
                start += len(pairs)

    def predict(
        self,
        sentence_pairs: Iterable[tuple[str, str]],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> np.ndarray:
        """Similarity of each `(sentence_1, sentence_2)` pair on the original score range (e.g. 0-5), in input
        order.

        Pairs are tokenized `chunk_size` at a time, batched by length within a chunk (less padding), and
        scored without gradients; `predict_chunks` streams the scores of pairs that do not fit in memory.
        """
        chunks = self.predict_chunks(sentence_pairs, batch_size, show_progress_bar, chunk_size)
        return np.concatenate([np.empty(0, dtype=np.float64), *chunks])


class SentenceEncoder(PairScorer):
    """`encode`, pair scoring from the embeddings of distinct sentences, and search and mining on top."""

    def embed_batch(self, batch: dict) -> np.ndarray:
        """Float32 embeddings of one padded batch from `sorted_batches`, on the CPU."""
        raise NotImplementedError

    def embedding_scores(self, embeddings_1: np.ndarray, embeddings_2: np.ndarray) -> np.ndarray:
        """Float32 scores on the 0-1 training scale of pairs of embeddings from `encode` (not normalized)."""
        raise NotImplementedError

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        show_progress_bar: bool | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> np.ndarray | torch.Tensor:
        """Embed sentences, `(n, hidden)` (or `(hidden,)` for one string), in input order.

        A float32 numpy array by default; a CPU tensor with `convert_to_tensor=True` (or `convert_to_numpy=False`).
        `normalize_embeddings` defaults to the config's. Sentences are tokenized `chunk_size` at a time and batched
        by length within a chunk; each batch's embeddings move to the CPU as soon as they are computed, so the
        model's device holds one batch at a time.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        single = isinstance(sentences, str)
        sentences = check_sentences([sentences] if single else sentences, normalize=self.normalized_text())
        if normalize_embeddings is None:
            normalize_embeddings = self.config.normalize_embeddings
        embeddings = np.empty((len(sentences), self.hidden_size), dtype=np.float32)
        with progress_bar(len(sentences), batch_size, show_progress_bar, "Encoding", "sentence") as progress:
            for start in range(0, len(sentences), chunk_size):
                features = self.tokenize_sentences(sentences[start : start + chunk_size])
                with self.inference_mode():
                    for index, batch in self.sorted_batches(features, batch_size, progress):
                        embeddings[start + index] = self.embed_batch(batch)
        if normalize_embeddings:
            embeddings /= np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
        if single:
            embeddings = embeddings[0]
        return torch.from_numpy(embeddings) if convert_to_tensor or not convert_to_numpy else embeddings

    def score_pairs(self, pairs: list[tuple[str, str]], batch_size: int, progress=None) -> np.ndarray:
        """Scores of checked pairs on the original range: the distinct sentences are encoded once each, batched by
        their own length (less padding than pairs batched by the sum of two lengths), then the head scores each
        pair's embeddings."""
        position = {sentence: i for i, sentence in enumerate(dict.fromkeys(s for pair in pairs for s in pair))}
        embeddings = self.encode(
            list(position), batch_size=batch_size, normalize_embeddings=False, show_progress_bar=False
        )
        first = np.fromiter((position[a] for a, _ in pairs), dtype=np.int64, count=len(pairs))
        second = np.fromiter((position[b] for _, b in pairs), dtype=np.int64, count=len(pairs))
        step = 4096
        scores = np.concatenate(
            [np.empty(0, dtype=np.float32)]
            + [
                self.embedding_scores(embeddings[first[i : i + step]], embeddings[second[i : i + step]])
                for i in range(0, len(pairs), step)
            ]
        )
        if progress is not None:
            progress.update(len(pairs))
        return self.config.from_unit_range(scores.astype(np.float64))

    def model_fingerprint(self) -> str | None:
        """The fingerprint of this model's config and weights (`sts_models.artifacts.model_fingerprint`),
        which `build_index` records in the index and search and mining compare with the index's.

        Hashing every weight takes about 0.3 s for MiniLM-L6, so it is cached on the model, keyed by the config's
        JSON and each weight's identity, address and in-place version counter (`tensor._version`): training, an
        optimizer step, `load_state_dict`, `to(...)` or an in-place edit of a weight (`weight.add_(...)` under
        `torch.no_grad()`) recompute it. An edit through `weight.data` bypasses the version counter: then call
        `clear_fingerprint_cache()`.
        """
        tensors = self.state_dict(keep_vars=True)
        if any(tensor.is_inference() for tensor in tensors.values()):  # no version counter: never cached
            return model_fingerprint(self)
        key = (
            self.config.to_json_string(use_diff=False),
            tuple((name, id(t), t.data_ptr(), t._version, t.dtype) for name, t in tensors.items()),
        )
        cached = self.__dict__.get("_fingerprint_cache")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_fingerprint_cache"] = (key, model_fingerprint(self))
        return cached[1]

    def clear_fingerprint_cache(self) -> None:
        """Forget the cached `model_fingerprint` (after editing weights through `.data`)."""
        self.__dict__.pop("_fingerprint_cache", None)

    def check_index(self, corpus_index: EmbeddingIndex) -> EmbeddingIndex:
        """`corpus_index`, unless it records the fingerprint of another model (then a one-line `STSUserError`):
        its embeddings would not be comparable with this model's. An index of raw embeddings (`add`) records none."""
        if not isinstance(corpus_index, EmbeddingIndex):  # (a saved index's folder, say)
            raise STSUserError(
                f"corpus_index must be an EmbeddingIndex (EmbeddingIndex.load(folder) reads a saved one), got "
                f"{type(corpus_index).__name__} {str(corpus_index)[:80]!r}"
            )
        recorded = corpus_index.model_fingerprint
        if recorded is None:
            return corpus_index
        own = self.model_fingerprint()
        if own is not None and recorded != own:
            name = f"the index in {corpus_index.loaded_from}" if corpus_index.loaded_from else "corpus_index"
            raise STSUserError(
                f"{name} was built by another model (fingerprint {str(recorded)[:16]}), not this one (fingerprint "
                f"{own[:16]}): rebuild it with build_index"
            )
        return corpus_index

    def check_cosine_head(self, method: str) -> None:
        """Refuse, in one line, to rank by cosine for a model that scores pairs with another head (`mlp`): the
        cosine of its embeddings is not its score, and the ranking would differ from `predict`'s."""
        head = getattr(self.config, "head", "cosine")
        if head != "cosine":
            raise STSUserError(
                f"{method} ranks by the cosine of the embeddings, and this model scores pairs with its {head!r} head, "
                "whose scores the cosine does not follow: score candidate pairs with predict, or train with the "
                "cosine head"
            )

    def similarity(self, embeddings_1, embeddings_2) -> torch.Tensor:
        """Cosine similarity matrix of two sets of embeddings (from `encode`); the cosine head's models only."""
        self.check_cosine_head("similarity")
        return cos_sim(embeddings_1, embeddings_2)

    def _embeddings(self, inputs, batch_size: int, show_progress_bar: bool | None, name: str) -> torch.Tensor:
        """Encode sentences (a string, or any list or iterable of them: each is checked); pass embeddings through
        (an array or tensor, or a list of them or of lists of numbers). `name` (queries, corpus, sentences) names the
        input in errors."""
        if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "USO":  # sentences (a pandas column's values)
            inputs = inputs.tolist()
        elif isinstance(inputs, (np.ndarray, torch.Tensor)):
            return to_tensor(inputs, name)
        if isinstance(inputs, EmbeddingIndex):
            raise STSUserError(f"{name} is an EmbeddingIndex: pass it as corpus_index=")
        if not isinstance(inputs, (str, Iterable)):  # (encode would name its own argument, sentences)
            raise STSUserError(f"{name} must be sentences or embeddings, got {type(inputs).__name__} {inputs!r:.80}")
        if not isinstance(inputs, str):
            refuse_unordered(inputs, name, "sentences or embeddings")
            inputs = list(inputs) if isinstance(inputs, Iterable) else inputs
            if isinstance(inputs, list) and inputs and isinstance(inputs[0], (np.ndarray, torch.Tensor, list, tuple)):
                return to_tensor(inputs, name)
        return self.encode(inputs, batch_size=batch_size, convert_to_numpy=False, show_progress_bar=show_progress_bar)

    def build_index(
        self,
        sentences: Sequence[str],
        precision: str = "int8",
        batch_size: int = 32,
        chunk_size: int = 50_000,
        show_progress_bar: bool | None = None,
        **index_kwargs,
    ) -> EmbeddingIndex:
        """An approximate-search `EmbeddingIndex` of `sentences` for `semantic_search` and `paraphrase_mining`
        (`corpus_index=`), encoded and added `chunk_size` sentences at a time, so a large corpus is never held
        as float32 embeddings at once. Needs the `faiss` extra.

        `precision` is `"float32"`, `"int8"` or `"binary"`; `index_kwargs` go to `EmbeddingIndex` (`n_lists`,
        `n_probe`, ...). Save it beside the model with `index.save(folder)`, read it with `EmbeddingIndex.load`.
        The index records the model's fingerprint: another model's search and mining refuse it.
        """
        self.check_cosine_head("build_index")
        batch_size = check_positive_int("batch_size", batch_size)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        sentences = check_list_of_sentences(sentences)
        index_kwargs = {"expected_size": max(1, len(sentences)), **index_kwargs}
        index = EmbeddingIndex(self.hidden_size, precision=precision, **index_kwargs)
        index.model_fingerprint = self.model_fingerprint()
        if show_progress_bar is None:
            show_progress_bar = len(sentences) > 10 * batch_size
        with tqdm(total=len(sentences), desc="Indexing", unit="sentence", disable=not show_progress_bar) as bar:
            for start in range(0, len(sentences), chunk_size):
                chunk = sentences[start : start + chunk_size]
                index.add(self.encode(chunk, batch_size=batch_size, show_progress_bar=False))
                bar.update(len(chunk))
        return index

    def semantic_search(
        self,
        queries,
        corpus=None,
        top_k: int = 10,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        query_chunk_size: int = 100,
        corpus_chunk_size: int = 500_000,
        corpus_index: EmbeddingIndex | None = None,
    ) -> list[list[dict[str, float | int]]]:
        """For each query, the `top_k` most similar corpus entries `{"corpus_id", "score"}`, best first.

        Queries and corpus are sentences or embeddings from `encode` (encode a large corpus once, reuse it).
        Exact by default; with `corpus_index` (from `build_index`) instead of `corpus`, approximate; an index that
        another model built is refused (`check_index`).
        """
        self.check_cosine_head("semantic_search")
        if (corpus is None) == (corpus_index is None):
            raise STSUserError("semantic_search needs exactly one of corpus and corpus_index")
        if corpus_index is not None:
            self.check_index(corpus_index)
            return corpus_index.search(
                self._embeddings(queries, batch_size, show_progress_bar, "queries"), top_k=top_k
            )
        return semantic_search(
            self._embeddings(queries, batch_size, show_progress_bar, "queries"),
            self._embeddings(corpus, batch_size, show_progress_bar, "corpus"),
            top_k=top_k,
            query_chunk_size=query_chunk_size,
            corpus_chunk_size=corpus_chunk_size,
        )

    def paraphrase_mining(
        self,
        sentences: Sequence[str] | None = None,
        top_k: int = 100,
        max_pairs: int = 500_000,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        query_chunk_size: int = 5_000,
        corpus_chunk_size: int = 100_000,
        corpus_index: EmbeddingIndex | None = None,
    ) -> list[tuple[float, int, int]]:
        """The most similar pairs `(score, i, j)` among `sentences` (i < j), best first.

        Exact by default; with `corpus_index` (`build_index(sentences)`), approximate, among the indexed
        sentences (no encoding: `sentences` may be left out, else it must be as long as the index).
        """
        self.check_cosine_head("paraphrase_mining")
        if corpus_index is not None:
            self.check_index(corpus_index)
            sentences = None if sentences is None else check_list_of_sentences(sentences)  # (a generator has no len)
            if sentences is not None and len(sentences) != len(corpus_index):
                raise STSUserError(
                    f"corpus_index holds {len(corpus_index)} embeddings, but {len(sentences)} sentences were given"
                )
            return corpus_index.paraphrase_mining(top_k=top_k, max_pairs=max_pairs, query_chunk_size=query_chunk_size)
        if sentences is None:
            raise STSUserError("paraphrase_mining needs sentences or corpus_index")
        return paraphrase_mining_embeddings(
            self._embeddings(check_list_of_sentences(sentences), batch_size, show_progress_bar, "sentences"),
            top_k=top_k,
            max_pairs=max_pairs,
            query_chunk_size=query_chunk_size,
            corpus_chunk_size=corpus_chunk_size,
        )
