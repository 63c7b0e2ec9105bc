"""Siamese bi-encoder (arch `siamese`): one shared encoder, each sentence embedded on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .configuration import STSSiameseConfig
from .errors import STSInputError, check_positive_int, check_sentences
from .heads import RegressionHead, symmetric_features
from .losses import build_loss
from .modeling_base import CHUNK_SIZE, STSModelOutput, STSPreTrainedModel, progress_bar
from .pooling import pool
from .search import cos_sim, paraphrase_mining_embeddings, semantic_search, to_tensor
from .search_index import EmbeddingIndex
from .sentence_transformers_export import save_sentence_transformer


def batch_data_shape(num_inputs: int, labels: torch.Tensor | None) -> str:
    """The data shape of a batch, from how many sentence inputs it has and its labels."""
    if num_inputs == 1:
        return "labelled_sentences"
    if num_inputs == 3:
        return "triplets"
    if labels is None:
        return "positive_pairs"
    return "scored_pairs" if labels.is_floating_point() else "labelled_pairs"


@dataclass
class SiameseModelOutput(STSModelOutput):
    """`STSModelOutput` plus the pooled embeddings of both sentences (with `output_embeddings=True`)."""

    embeddings_1: torch.FloatTensor | None = None
    embeddings_2: torch.FloatTensor | None = None


class STSSiameseModel(STSPreTrainedModel):
    """Embeds each sentence to u and v, then scores cos(u, v) (`head="cosine"`) or an MLP over
    [|u-v|, u*v, u+v] (`head="mlp"`). Both heads are symmetric: score(a, b) == score(b, a).

    `predict` maps the cosine head's raw cosine, which spans -1 to 1, as it maps a 0-1 score, without clipping:
    a pair whose embeddings point apart scores below `score_min` (a cosine of -0.1 is -0.5 on STS-B's 0-5).
    Clipping would tie all such pairs at `score_min` and change their Spearman correlation.

    Besides scored pairs, it trains on the other data shapes of `sts_models.losses.DATA_SHAPES`
    (labelled pairs, positive pairs, triplets, labelled sentences) with the loss in `config.loss`.
    """

    config_class = STSSiameseConfig
    main_input_name = "input_ids_1"

    def __init__(self, config: STSSiameseConfig, encoder=None):
        super().__init__(config, encoder)
        self.head = (
            RegressionHead(3 * self.hidden_size, config.head_hidden_size, config.classifier_dropout)
            if config.head == "mlp"
            else None
        )
        self.loss_fct = build_loss(config.loss, self.hidden_size, config.num_labels, **(config.loss_kwargs or {}))
        self.post_init()

    @property
    def data_shapes(self) -> tuple[str, ...]:
        return self.loss_fct.data_shapes

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled sentence embeddings `(batch, hidden)`."""
        return pool(self.encoder_states(input_ids, attention_mask), attention_mask, self.config.pooling)

    def score(self, embeddings_1: torch.Tensor, embeddings_2: torch.Tensor) -> torch.Tensor:
        """Similarity of two batches of embeddings, on the 0-1 training scale; the cosine head's raw cosine goes
        down to -1 (not clipped, see the class docstring)."""
        if self.head is None:  # in float32, also under bf16/fp16 autocast
            return F.cosine_similarity(embeddings_1.float(), embeddings_2.float(), dim=-1)
        return self.head(symmetric_features(embeddings_1, embeddings_2))

    def forward(
        self,
        input_ids_1: torch.Tensor,
        attention_mask_1: torch.Tensor,
        input_ids_2: torch.Tensor | None = None,
        attention_mask_2: torch.Tensor | None = None,
        input_ids_3: torch.Tensor | None = None,
        attention_mask_3: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_loss: bool = True,
        output_embeddings: bool = False,
    ) -> SiameseModelOutput:
        """Inputs 1, 2, 3 are the columns of the batch's data shape (e.g. anchor, positive, negative).

        `logits` is the pair score of inputs 1 and 2 (none for single sentences). Training refuses a batch
        the loss does not train on (e.g. float labels, which make scored pairs, for a loss of labelled
        pairs). In evaluation, scored pairs the loss does not train on get the pair loss (MSE), so
        evaluating on STS data works whatever the training loss.
        Positive pairs and triplets need no labels for their loss (`return_loss=False` skips it).
        """
        inputs = [(input_ids_1, attention_mask_1), (input_ids_2, attention_mask_2), (input_ids_3, attention_mask_3)]
        embeddings = [self.embed(ids, mask) for ids, mask in inputs if ids is not None]
        logits = self.score(embeddings[0], embeddings[1]) if len(embeddings) > 1 else None
        shape = batch_data_shape(len(embeddings), labels)
        if return_loss and self.training and shape not in self.loss_fct.data_shapes:
            labels_kind = "" if labels is None else f" ({labels.dtype} labels)"
            raise ValueError(
                f"loss {self.config.loss!r} trains on {self.loss_fct.data_shapes}, not on {shape}{labels_kind}"
            )
        loss = None
        if return_loss and shape in (*self.loss_fct.data_shapes, "scored_pairs"):
            # (batch, columns, hidden), so that one gather keeps each example's columns together
            stacked, labels, pair_scores = self.gather_for_loss(torch.stack(embeddings, dim=1), labels, logits)
            if shape in self.loss_fct.data_shapes:
                loss = self.loss_fct(list(stacked.unbind(1)), labels, pair_scores)
            else:
                loss = self.compute_loss(pair_scores, labels)
        return SiameseModelOutput(
            loss=loss,
            logits=logits,
            embeddings_1=embeddings[0] if output_embeddings else None,
            embeddings_2=embeddings[1] if output_embeddings and len(embeddings) > 1 else None,
        )

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
        sentences = check_sentences([sentences] if single else sentences)
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
        pair's embeddings, as `forward` does."""
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

    def embedding_scores(self, embeddings_1: np.ndarray, embeddings_2: np.ndarray) -> np.ndarray:
        """Float32 scores on the 0-1 training scale of pairs of embeddings from `encode` (not normalized)."""
        with self.inference_mode():
            first, second = (torch.from_numpy(e).to(self.device) for e in (embeddings_1, embeddings_2))
            return self.score(first, second).float().cpu().numpy()

    def embed_batch(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """Float32 embeddings of one padded batch from `sorted_batches`, on the CPU."""
        return self.embed(**batch).float().cpu().numpy()

    def similarity(self, embeddings_1, embeddings_2) -> torch.Tensor:
        """Cosine similarity matrix of two sets of embeddings (from `encode`)."""
        return cos_sim(embeddings_1, embeddings_2)

    def _embeddings(self, inputs, batch_size: int, show_progress_bar: bool | None) -> torch.Tensor:
        """Encode sentences; pass embeddings through."""
        if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str)):
            return self.encode(
                inputs, batch_size=batch_size, convert_to_numpy=False, show_progress_bar=show_progress_bar
            )
        return to_tensor(inputs)

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
        """
        sentences = list(sentences)
        index = EmbeddingIndex(
            self.hidden_size, precision=precision, expected_size=max(1, len(sentences)), **index_kwargs
        )
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
        Exact by default; with `corpus_index` (from `build_index`) instead of `corpus`, approximate.
        """
        if (corpus is None) == (corpus_index is None):
            raise STSInputError("semantic_search needs exactly one of corpus and corpus_index")
        if corpus_index is not None:
            return corpus_index.search(self._embeddings(queries, batch_size, show_progress_bar), top_k=top_k)
        return semantic_search(
            self._embeddings(queries, batch_size, show_progress_bar),
            self._embeddings(corpus, batch_size, show_progress_bar),
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
        if corpus_index is not None:
            if sentences is not None and len(sentences) != len(corpus_index):
                raise STSInputError(
                    f"corpus_index holds {len(corpus_index)} embeddings, but {len(sentences)} sentences were given"
                )
            return corpus_index.paraphrase_mining(top_k=top_k, max_pairs=max_pairs, query_chunk_size=query_chunk_size)
        if sentences is None:
            raise STSInputError("paraphrase_mining needs sentences or corpus_index")
        return paraphrase_mining_embeddings(
            self._embeddings(list(sentences), batch_size, show_progress_bar),
            top_k=top_k,
            max_pairs=max_pairs,
            query_chunk_size=query_chunk_size,
            corpus_chunk_size=corpus_chunk_size,
        )

    def save_sentence_transformer(self, folder: str) -> None:
        """Write a folder that `sentence_transformers.SentenceTransformer(folder)` loads, with the same
        encoder, tokenizer, pooling and normalization (cosine head only)."""
        save_sentence_transformer(self, folder)
