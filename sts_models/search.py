"""Semantic search and paraphrase mining over embeddings, in chunks so memory stays bounded."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .errors import STSUserError, check_positive_int

# what numpy's dtype kinds that are no numbers hold, for the message refusing them
NOT_NUMBERS = {"U": "text", "S": "bytes", "O": "Python objects", "M": "dates", "m": "time spans", "V": "records"}


def to_tensor(embeddings, name: str = "embeddings") -> torch.Tensor:
    """`embeddings` (a tensor, an array, or a list of them or of lists of numbers) as a tensor; anything else (rows
    of different lengths, sentences where embeddings belong) refused in one line naming `name`."""
    if isinstance(embeddings, torch.Tensor):
        return embeddings
    try:
        if (
            isinstance(embeddings, (list, tuple))
            and embeddings
            and all(isinstance(row, torch.Tensor) for row in embeddings)
        ):
            return torch.stack(list(embeddings))  # on their device (numpy would need them on the CPU)
        array = np.asarray(embeddings)
    except (TypeError, ValueError, RuntimeError) as error:  # e.g. rows of different lengths
        raise STSUserError(f"{name} must be an array of numbers (n, dim): {' '.join(str(error).split())}") from None
    if array.dtype.kind in NOT_NUMBERS:
        hint = (
            ": encode sentences first, or pass them to the model's semantic_search" if array.dtype.kind in "US" else ""
        )
        raise STSUserError(f"{name} must be numbers, got {NOT_NUMBERS[array.dtype.kind]}{hint}")
    return torch.as_tensor(array)


def embedding_rows(embeddings: torch.Tensor, name: str) -> torch.Tensor:
    """`embeddings` as rows `(n, dim)`: one 1-D embedding is one row, an empty input (`[]`, `(0, dim)`) no row.
    Other shapes, and rows of no values (`(n, 0)`, which are no empty input), are refused naming `name`."""
    if embeddings.dim() == 1:
        embeddings = embeddings.unsqueeze(0) if embeddings.numel() else embeddings.reshape(0, 0)
    if embeddings.dim() != 2:
        raise STSUserError(f"{name} must be 2-D (n, dim), got shape {tuple(embeddings.shape)}")
    if len(embeddings) and embeddings.shape[1] == 0:
        raise STSUserError(
            f"{name} have shape {tuple(embeddings.shape)}: {len(embeddings)} row(s) of no values (dimension 0)"
        )
    return embeddings


def as_rows(embeddings, name: str) -> torch.Tensor:
    """Float32 embeddings as rows `(n, dim)` (`embedding_rows`), refusing values that are not finite (an embedding
    of NaN ranks nothing)."""
    rows = embedding_rows(to_tensor(embeddings, f"{name} embeddings").float(), f"{name} embeddings")
    check_finite_rows(torch.isfinite(rows).all(dim=1).cpu().numpy(), f"{name} embedding")
    return rows


def check_finite_rows(finite: np.ndarray, row_name: str) -> None:
    """Refuse, naming the first (`row_name` and its number), rows whose `finite` flag is False: NaN ranks nothing."""
    if not finite.all():
        raise STSUserError(f"{row_name} {int(np.argmin(finite))} holds NaN or infinite values")


def check_same_dimension(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    """Refuse two sets of embedding rows (`names`) of different dimensions: the embeddings of two models."""
    if len(a) and len(b) and a.shape[1] != b.shape[1]:
        raise STSUserError(
            f"{names[0]} embeddings have dimension {a.shape[1]} and {names[1]} embeddings {b.shape[1]}: "
            "embed both with the same model"
        )


def cos_sim(a, b) -> torch.Tensor:
    """Cosine similarity matrix `(len(a), len(b))` (rows as `as_rows` takes them)."""
    a, b = as_rows(a, "first"), as_rows(b, "second")
    check_same_dimension(a, b, ("first", "second"))
    if not (len(a) and len(b)):
        return a.new_empty(len(a), len(b))
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def _chunked_top_k(
    queries: torch.Tensor, corpus: torch.Tensor, top_k: int, corpus_chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best `top_k` (scores, corpus indices) of each query: a running top-k over corpus chunks, so only
    a `(queries, corpus_chunk_size)` score block exists at a time. Inputs are L2-normalized."""
    best_scores = queries.new_empty(len(queries), 0)
    best_indices = torch.empty(len(queries), 0, dtype=torch.long, device=queries.device)
    for start in range(0, len(corpus), corpus_chunk_size):
        scores = queries @ corpus[start : start + corpus_chunk_size].T
        scores, indices = scores.topk(min(top_k, scores.shape[1]), dim=1)
        best_scores = torch.cat([best_scores, scores], dim=1)
        best_indices = torch.cat([best_indices, indices + start], dim=1)
        best_scores, order = best_scores.topk(min(top_k, best_scores.shape[1]), dim=1)
        best_indices = best_indices.gather(1, order)
    return best_scores, best_indices


def semantic_search(
    query_embeddings,
    corpus_embeddings,
    *,
    top_k: int = 10,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500_000,
) -> list[list[dict[str, float | int]]]:
    """For each query, the `top_k` corpus entries by cosine similarity: `[{"corpus_id", "score"}, ...]`,
    best first (the format of `sentence_transformers.util.semantic_search`). The options are keywords only:
    `util.semantic_search` takes them in another order, so a call written for it is refused, not misread."""
    top_k = check_positive_int("top_k", top_k)
    query_chunk_size = check_positive_int("query_chunk_size", query_chunk_size)
    corpus_chunk_size = check_positive_int("corpus_chunk_size", corpus_chunk_size)
    queries, corpus = (
        as_rows(embeddings, name) for embeddings, name in ((query_embeddings, "query"), (corpus_embeddings, "corpus"))
    )
    check_same_dimension(queries, corpus, ("query", "corpus"))
    queries = queries.to(corpus.device)  # (a corpus kept on a GPU, queries from encode: as sentence-transformers)
    queries, corpus = F.normalize(queries, dim=-1), F.normalize(corpus, dim=-1)
    results = []
    for start in range(0, len(queries), query_chunk_size):
        scores, indices = _chunked_top_k(queries[start : start + query_chunk_size], corpus, top_k, corpus_chunk_size)
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist()):
            results.append([{"corpus_id": i, "score": s} for s, i in zip(row_scores, row_indices)])
    return results


def paraphrase_mining_embeddings(
    embeddings,
    *,
    top_k: int = 100,
    max_pairs: int = 500_000,
    query_chunk_size: int = 5_000,
    corpus_chunk_size: int = 100_000,
) -> list[tuple[float, int, int]]:
    """The most similar pairs `(score, i, j)` with i < j, best first: each sentence's `top_k` nearest
    other sentences, pooled and deduplicated, at most `max_pairs` (as sentence-transformers'
    `paraphrase_mining`). The options are keywords only, as in `semantic_search`."""
    top_k = check_positive_int("top_k", top_k)
    max_pairs = check_positive_int("max_pairs", max_pairs)
    query_chunk_size = check_positive_int("query_chunk_size", query_chunk_size)
    corpus_chunk_size = check_positive_int("corpus_chunk_size", corpus_chunk_size)
    vectors = F.normalize(as_rows(embeddings, "sentence"), dim=-1)
    found_scores, found_first, found_second = [], [], []
    for start in range(0, len(vectors), query_chunk_size):
        queries = vectors[start : start + query_chunk_size]
        scores, neighbours = _chunked_top_k(queries, vectors, top_k + 1, corpus_chunk_size)
        rows = torch.arange(start, start + len(queries), device=vectors.device).unsqueeze(1).expand_as(neighbours)
        keep = neighbours != rows  # a sentence is not its own paraphrase
        found_scores.append(scores[keep])
        found_first.append(torch.minimum(rows, neighbours)[keep])
        found_second.append(torch.maximum(rows, neighbours)[keep])
    if not found_scores:
        return []
    return best_pairs(
        torch.cat(found_scores).cpu().numpy(),
        torch.cat(found_first).cpu().numpy(),
        torch.cat(found_second).cpu().numpy(),
        len(vectors),
        max_pairs,
    )


def best_pairs(
    scores: np.ndarray, first: np.ndarray, second: np.ndarray, num_sentences: int, max_pairs: int
) -> list[tuple[float, int, int]]:
    """Pairs `(score, i, j)` found as neighbours (`first < second`), each once, best first, at most `max_pairs`."""
    # best score first (ties by index); each pair once, though it is usually found from both ends
    order = np.lexsort((second, first, -scores))
    _, first_seen = np.unique(first[order].astype(np.int64) * num_sentences + second[order], return_index=True)
    chosen = order[np.sort(first_seen)][:max_pairs]
    return [(float(scores[i]), int(first[i]), int(second[i])) for i in chosen]
