"""Bad input to the Python API is refused, never read silently into wrong results (issue #12).

Each row of API_CASES calls the Python API (`from_encoder`, `from_pretrained`, `predict`, `encode`,
`semantic_search`, `load_model`, `load_sts_dataset`, a model's forward pass, a config) with a folder, an
argument or a batch it cannot use, and checks the exception and that its message is one line matching the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, BertTokenizer, pipeline

import sts_models
import sts_models.data  # not imported by `sts_models` itself
from sts_models import STSPreTrainedModel, STSRegressionModel, STSSiameseConfig, STSSiameseModel
from sts_models.architectures import load_model
from sts_models.errors import STSUserError

from .bad_input_cases import PAIRS, folders  # noqa: F401
from .conftest import make_batch


def predict_call(batch_size):
    return lambda f: STSRegressionModel.from_encoder(f["encoder"]).predict([PAIRS[0][:2]], batch_size=batch_size)


def encode_call(batch_size):
    return lambda f: STSSiameseModel.from_encoder(f["encoder"]).encode(["a man", "a dog"], batch_size=batch_size)


def siamese(folders) -> STSSiameseModel:  # noqa: F811
    return STSSiameseModel.from_encoder(folders["encoder"])


def float_labels_with_contrastive_loss(folders):  # noqa: F811
    model = STSSiameseModel.from_encoder(folders["encoder"], loss="contrastive").train()
    batch = make_batch(model, PAIRS, labels=[1.0, 0.0])  # scores, where the loss needs integer class labels
    return model(**batch)


def with_max_seq_length(model, length: int):
    model.config.max_seq_length = length  # set after loading: past the encoder's 128 positions
    return model


LONG = "a man is playing a large flute " * 40  # about 280 tokens


@dataclass(frozen=True)
class APICase:
    id: str
    call: Callable[[dict], object]
    message: str
    error: type[Exception] = STSUserError


API_CASES = [
    APICase("from-encoder-without-tokenizer-files", lambda f: STSSiameseModel.from_encoder(f["no_tokenizer"]),
            "encoder-without-tokenizer has no tokenizer files: BertTokenizer reads tokenizer.json or vocab.txt"),
    APICase("saved-model-without-tokenizer-files",
            lambda f: AutoModel.from_pretrained(f["saved_no_tokenizer"]).predict([PAIRS[0][:2]]),
            "saved-bert-without-tokenizer has no tokenizer files"),
    APICase("tokenizer-of-special-tokens-only", lambda f: STSSiameseModel.from_encoder(f["specials_only"]),
            "holds only its 5 special tokens, no vocabulary"),
    APICase("model-tokenizer-of-special-tokens-only", lambda f: setattr(siamese(f), "tokenizer", BertTokenizer()),
            "^model.tokenizer = BertTokenizer holds only its 5 special tokens, no vocabulary"),
    # the model and the ways to it of a user who has the wrong folder, class or config
    APICase("pipeline-of-a-plain-encoder", lambda f: pipeline("sentence-similarity", model=f["encoder"], device="cpu"),
            r"tiny-bert\d* is a plain encoder, not a saved STS model: build one on it with STSSiameseModel.from_encoder"),
    APICase("base-class-from-pretrained-of-a-plain-encoder", lambda f: STSPreTrainedModel.from_pretrained(f["encoder"]),
            r"tiny-bert\d* is a plain encoder, not a saved STS model: build one on it with STSSiameseModel.from_encoder"),
    APICase("from-pretrained-with-the-config-of-another-model",
            lambda f: STSSiameseModel.from_pretrained(f["encoder"], config=AutoConfig.from_pretrained(f["encoder"])),
            r"config= is a 'bert' config, not a STSSiameseModel \('sts_siamese'\): give a STSSiameseConfig"),
    APICase("from-pretrained-with-the-config-of-another-arch",
            lambda f: STSSiameseModel.from_pretrained(f["saved"], config=AutoConfig.from_pretrained(f["saved"])),
            r"saved-bert: config= is a 'sts_regression' config, not a STSSiameseModel \('sts_siamese'\)"),
    APICase("from-pretrained-pickled-weights", lambda f: AutoModel.from_pretrained(f["saved_pickled"]),
            r"saved-pickled holds its weights as pytorch_model.bin \(a pickle\), and sts-models loads safetensors only"),
    APICase("pipeline-of-pickled-weights",
            lambda f: pipeline("sentence-similarity", model=f["saved_pickled"], device="cpu"),
            r"^\S+saved-pickled holds its weights as pytorch_model.bin \(a pickle\), and sts-models loads safetensors"),
    APICase("from-pretrained-onnx-export", lambda f: AutoModel.from_pretrained(f["onnx_export"]),
            r"onnx-export is an ONNX export \(onnx_config.json\), not a PyTorch model: load it with "
            r"sts_models.backends.onnx.ORTSTSModel.from_pretrained"),
    APICase("pipeline-of-an-onnx-export",
            lambda f: pipeline("sentence-similarity", model=f["onnx_export"], device="cpu"),
            r"^\S+onnx-export is an ONNX export \(onnx_config.json\), not a PyTorch model"),
    APICase("predict-max-seq-length-set-past-the-positions",
            lambda f: with_max_seq_length(AutoModel.from_pretrained(f["saved"]), 512).predict([(LONG, "a man")]),
            r"^max_seq_length 512 is more than the 128 positions of the encoder \(bert\)$"),
    APICase("encode-max-seq-length-set-past-the-positions",
            lambda f: with_max_seq_length(siamese(f), 512).encode([LONG]),
            r"^max_seq_length 512 is more than the 128 positions of the encoder \(bert\)$"),
    APICase("predict-batch-size-negative", predict_call(-1), "batch_size must be a positive integer, got -1"),
    APICase("predict-batch-size-zero", predict_call(0), "batch_size must be a positive integer, got 0"),
    APICase("encode-batch-size-negative", encode_call(-1), "batch_size must be a positive integer, got -1"),
    APICase("encode-batch-size-zero", encode_call(0), "batch_size must be a positive integer, got 0"),
    APICase("semantic-search-top-k-zero",
            lambda f: sts_models.search.semantic_search(torch.ones(1, 4), torch.ones(3, 4), top_k=0),
            "top_k must be a positive integer, got 0"),
    APICase("float-labels-with-a-contrastive-loss", float_labels_with_contrastive_loss,
            r"loss 'contrastive' trains on \('labelled_pairs',\), not on scored_pairs \(torch.float32 labels\)",
            ValueError),
    APICase("config-max-seq-length-zero", lambda f: STSSiameseConfig(max_seq_length=0),
            "max_seq_length must be a positive number of tokens, got 0", ValueError),
    APICase("from-pretrained-max-seq-length-zero", lambda f: AutoModel.from_pretrained(f["saved"], max_seq_length=0),
            "max_seq_length must be a positive number of tokens, got 0", ValueError),
    APICase("encode-none-among-sentences", lambda f: siamese(f).encode(["A man plays.", None]),
            r"sentences\[1\] must be a string, got None"),
    APICase("encode-a-number", lambda f: siamese(f).encode(123),
            "sentences must be a string or a list of strings, got int 123"),
    APICase("predict-a-non-pair", lambda f: siamese(f).predict([PAIRS[0][:2], ("A dog runs.",)]),
            r"sentence_pairs\[1\] must be a pair of strings, got \('A dog runs.',\)"),
    APICase("predict-a-lone-surrogate", lambda f: siamese(f).predict([("A man \ud800 plays.", "A dog runs.")]),
            r"sentence_pairs\[0\] holds a lone surrogate U\+D800 at character 7, which is not Unicode text"),
    APICase("encode-a-lone-surrogate", lambda f: siamese(f).encode(["A dog runs.", "\udcff"]),
            r"sentences\[1\] holds an empty sentence"),  # a surrogate alone is no text (category Cs)
    APICase("load-model-with-an-option-of-another-arch", lambda f: load_model("cross", f["encoder"], head="mlp"),
            "head='mlp' does not apply to the cross arch: it is an option of siamese"),
    APICase("paraphrase-mining-one-string", lambda f: siamese(f).paraphrase_mining("abc"),
            "sentences must be a list of strings, not one string: 'abc'"),
    APICase("build-index-one-string", lambda f: siamese(f).build_index("abc", precision="float32"),
            "sentences must be a list of strings, not one string: 'abc'"),
    APICase("semantic-search-none-first", lambda f: siamese(f).semantic_search([None, "a man"], ["a dog"]),
            r"sentences\[0\] must be a string, got None"),
    APICase("semantic-search-dimensions-differ",
            lambda f: sts_models.search.semantic_search(torch.ones(1, 16), torch.ones(2, 32)),
            "query embeddings have dimension 16 and corpus embeddings 32: embed both with the same model"),
    APICase("semantic-search-nan-embedding",
            lambda f: sts_models.search.semantic_search(torch.ones(1, 4), torch.tensor([[1.0] * 4, [float("nan")] * 4])),
            "corpus embedding 1 holds NaN or infinite values"),
    APICase("similarity-of-sentences", lambda f: siamese(f).similarity(["A man"], ["A dog"]),
            "first embeddings must be numbers, got text: encode sentences first"),
    APICase("similarity-dimensions-differ", lambda f: siamese(f).similarity(torch.ones(2, 8), torch.ones(3, 4)),
            "first embeddings have dimension 8 and second embeddings 4: embed both with the same model"),
    APICase("similarity-nan-embedding", lambda f: siamese(f).similarity(torch.ones(1, 4), torch.full((2, 4), torch.nan)),
            "second embedding 0 holds NaN or infinite values"),
    # n rows of no values (n, 0) are no empty input: refused, not answered with results for no row
    APICase("similarity-rows-of-no-values", lambda f: siamese(f).similarity(torch.ones(3, 0), torch.ones(2, 4)),
            r"first embeddings have shape \(3, 0\): 3 row\(s\) of no values \(dimension 0\)"),
    APICase("semantic-search-queries-of-no-values",
            lambda f: siamese(f).semantic_search(np.zeros((2, 0)), np.ones((3, 4))),
            r"query embeddings have shape \(2, 0\): 2 row\(s\) of no values \(dimension 0\)"),
    APICase("paraphrase-mining-embeddings-of-no-values",
            lambda f: sts_models.search.paraphrase_mining_embeddings(torch.ones(4, 0)),
            r"sentence embeddings have shape \(4, 0\): 4 row\(s\) of no values"),
    APICase("semantic-search-pairs-as-queries",
            lambda f: siamese(f).semantic_search([("A man", "A dog")], ["A dog runs."]),
            "queries must be numbers, got text: encode sentences first, or pass them to the model's semantic_search"),
    APICase("semantic-search-ragged-embeddings",
            lambda f: sts_models.search.semantic_search([[1.0, 2.0], [1.0]], torch.ones(2, 2)),
            r"query embeddings must be an array of numbers \(n, dim\): .*inhomogeneous"),
    APICase("semantic-search-ragged-tensors",
            lambda f: sts_models.search.semantic_search([torch.ones(4), torch.ones(3)], torch.ones(2, 4)),
            r"query embeddings must be an array of numbers \(n, dim\): stack expects each tensor to be equal size"),
    APICase("semantic-search-a-dict-corpus", lambda f: siamese(f).semantic_search(["A man"], {"a": "A man plays."}),
            r"corpus must be sentences or embeddings, got dict \(its keys would be read\)"),
    # an index given where embeddings go, or its saved folder as corpus_index; input that is no sentences at all
    APICase("semantic-search-an-index-as-corpus",
            lambda f: siamese(f).semantic_search(["A man"], sts_models.EmbeddingIndex(4)),
            r"^corpus is an EmbeddingIndex: pass it as corpus_index=$"),
    APICase("semantic-search-a-folder-as-corpus-index",
            lambda f: siamese(f).semantic_search(["A man"], corpus_index=f["encoder"]),
            r"^corpus_index must be an EmbeddingIndex \(EmbeddingIndex.load\(folder\) reads a saved one\), got str"),
    APICase("paraphrase-mining-a-folder-as-corpus-index",
            lambda f: siamese(f).paraphrase_mining(corpus_index=f["encoder"]),
            r"^corpus_index must be an EmbeddingIndex"),
    APICase("semantic-search-no-queries", lambda f: siamese(f).semantic_search(None, ["A dog runs."]),
            r"^queries must be sentences or embeddings, got NoneType None$"),
    APICase("encode-a-set", lambda f: siamese(f).encode({"A man plays.", "A dog runs."}),
            "sentences must be a string or a list of strings, got set, whose order is not yours"),
    APICase("predict-a-set", lambda f: siamese(f).predict({PAIRS[0][:2]}),
            r"sentence_pairs must be a list of \(sentence_1, sentence_2\) pairs, got set, whose order is not yours"),
    APICase("load-data-with-an-empty-score-range",
            lambda f: sts_models.data.load_sts_dataset(f["stsb"], score_range=(5.0, 5.0)),
            r"score_max \(5.0\) must be greater than score_min \(5.0\)"),
    # the range is the API's argument, not the commands' flags (--score_min/--score_max)
    APICase("load-data-scores-outside-the-range",
            lambda f: sts_models.data.load_sts_dataset(f["stsb"], splits=["test"], score_range=(0.0, 1.0)),
            r"sts-test.csv, line \d+: score [\d.]+ is outside the score range \[0.0, 1.0\] \(gold scores on another "
            r"scale: score_range=\(min, max\)\)$"),
    APICase("read-pairs-scores-outside-the-range",
            lambda f: list(sts_models.data.read_sentence_pairs(f"{f['stsb']}/sts-test.csv", score_range=(0.0, 1.0))),
            r"sts-test.csv, line \d+: score [\d.]+ is outside the score range \[0.0, 1.0\] \(gold scores on another "
            r"scale: score_range=\(min, max\)\)$"),
]  # fmt: skip


@pytest.mark.parametrize("case", API_CASES, ids=lambda case: case.id)
def test_api_refuses_bad_input(case, folders):  # noqa: F811
    with pytest.raises(case.error, match=case.message) as raised:
        case.call(folders)
    assert "\n" not in str(raised.value)
