"""Tokenizing sentences and pairs the way each architecture reads them, for training data and inference alike:
`PairTokenizing`, mixed into the PyTorch and the ONNX Runtime models (through `inference.PairScorer`), which
provide `tokenizer`, `config` and `encodes_pairs_jointly`.

This file is copied beside the weights with the model code (`save_pretrained`): it imports only its siblings.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .errors import STSUserError

SWAPPED = "_swapped"  # the suffix of the inputs of a pair read in reverse order (`symmetric` joint models)

logger = logging.getLogger(__name__)


def unreadable_json(folder: str, error: ValueError) -> str:
    """Which of `folder`'s tokenizer files is not valid JSON, and where (else `error` itself)."""
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                json.load(handle)
        except FileNotFoundError:
            continue
        except ValueError as damaged:  # JSONDecodeError, UnicodeDecodeError
            return f"{os.path.join(folder, name)} is not valid JSON ({damaged})"
    return f"{folder.rstrip(os.sep)}: its tokenizer cannot be read ({' '.join(str(error).split())})"


def load_tokenizer(name_or_path: str, **kwargs) -> PreTrainedTokenizerBase:
    """`AutoTokenizer.from_pretrained(name_or_path)`, refusing a tokenizer that has no vocabulary.

    Given a folder without its tokenizer files, or with a `tokenizer.json` that holds only special tokens,
    transformers builds a tokenizer of special tokens alone instead of failing: every word becomes the
    unknown token, so a model scores any two sentences of the same length alike.
    """
    folder = os.path.join(name_or_path, kwargs.get("subfolder") or "")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    except ValueError as error:  # a damaged JSON file of the tokenizer's (json.JSONDecodeError), named by neither
        if not os.path.isdir(folder):
            raise
        raise STSUserError(f"{unreadable_json(folder, error)}: save the tokenizer beside the model again") from None
    if os.path.isdir(folder):
        # The files this tokenizer class reads: its tokenizer.json, or else all of its own vocabulary files.
        files = dict(type(tokenizer).vocab_files_names)
        full = files.pop("tokenizer_file", None)

        def present(key: str, name: str) -> bool:
            return bool(tokenizer.init_kwargs.get(key)) or os.path.isfile(os.path.join(folder, name))

        missing = [name for key, name in files.items() if not present(key, name)]
        if missing and not (full and present("tokenizer_file", full)):
            choices = ([full] if full else []) + [" + ".join(files.values())]
            missing = ([full] if full else []) + missing
            lacks = "has neither" if len(missing) == len(choices) == 2 else f"lacks {', '.join(missing)}"
            raise STSUserError(
                f"{folder.rstrip(os.sep)} has no tokenizer files: {type(tokenizer).__name__} reads {' or '.join(choices)}, "
                f"and the folder {lacks}. Save the tokenizer beside the model"
            )
    check_vocabulary(tokenizer, f"the tokenizer of {name_or_path}")
    return tokenizer


def check_vocabulary(tokenizer: PreTrainedTokenizerBase, what: str) -> None:
    """Refuse a tokenizer of special tokens alone (`what` names it): every word would read as the unknown token, and
    a model would score any two sentences of the same length alike."""
    special = len(set(tokenizer.all_special_ids))
    if len(tokenizer) <= special:
        raise STSUserError(
            f"{what} holds only its {special} special tokens, no vocabulary: every word would read as unknown. Save "
            "the encoder's own tokenizer beside the model"
        )


class PairTokenizing:
    encodes_pairs_jointly = False

    def normalized_text(self) -> Callable[[str], str] | None:
        """What the tokenizer's normalizer makes of a string (fast tokenizers with one), for the check that a
        sentence keeps some text once normalized: a BERT tokenizer drops accents alone and U+FFFD, which would then
        score as special tokens."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        normalizer = getattr(backend, "normalizer", None)
        return normalizer.normalize_str if normalizer is not None else None

    def sequence_length(self, pair: bool = False) -> int:
        """`config.max_seq_length`, once checked to fit the encoder's positions (as when the model is built: a value
        set after loading would fail inside the encoder) and to leave room for text beside the special tokens the
        tokenizer adds to a sentence (or, with `pair`, to a pair in one sequence). With no room, truncation would
        keep only the special tokens, or the tokenizer would not truncate at all."""
        self.config.check_max_seq_length()  # also a value set on the config after loading, as at load
        special = self.tokenizer.num_special_tokens_to_add(pair=pair)
        if self.config.max_seq_length < special + (2 if pair else 1):
            raise ValueError(
                f"max_seq_length {self.config.max_seq_length} leaves no room for text: the tokenizer adds "
                f"{special} special tokens to each {'pair' if pair else 'sentence'}"
            )
        return self.config.max_seq_length

    def tokenize_sentences(self, sentences: Sequence[str], **kwargs) -> dict:
        """Tokenize single sentences (`input_ids`, `attention_mask`), as each side of a pair is."""
        sentences, length = list(sentences), self.sequence_length()
        encoded = self.tokenizer(sentences, truncation=True, max_length=length, **kwargs)
        self._note_truncation(encoded, length, (sentences,), "sentences")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def tokenize(self, sentences_1: Sequence[str], sentences_2: Sequence[str], **kwargs) -> dict:
        """Tokenize pairs the way this architecture reads them; training data and `predict` both use this.

        Joint models read `[CLS] s1 [SEP] s2 [SEP]` and, with `config.symmetric`, also the reverse order
        (`*_swapped` inputs); the others read each sentence on its own (`*_1`, `*_2`).
        """
        if self.encodes_pairs_jointly:
            features = self._tokenize_jointly(sentences_1, sentences_2, **kwargs)
            if getattr(self.config, "symmetric", False):
                swapped = self._tokenize_jointly(sentences_2, sentences_1, **kwargs)
                features.update({f"{key}{SWAPPED}": value for key, value in swapped.items()})
            return features
        features = {}
        for suffix, sentences in (("_1", sentences_1), ("_2", sentences_2)):
            features.update(
                {f"{key}{suffix}": value for key, value in self.tokenize_sentences(sentences, **kwargs).items()}
            )
        return features

    def _tokenize_jointly(self, sentences_1: Sequence[str], sentences_2: Sequence[str], **kwargs) -> dict:
        sentences_1, sentences_2, length = list(sentences_1), list(sentences_2), self.sequence_length(pair=True)
        encoded = self.tokenizer(sentences_1, sentences_2, truncation=True, max_length=length, **kwargs)
        self._note_truncation(encoded, length, (sentences_1, sentences_2), "pairs")
        return dict(encoded)

    def _note_truncation(self, encoded, length: int, texts: tuple[list[str], ...], what: str) -> None:
        """Warn, once per model, that inputs longer than `max_seq_length` tokens are cut to it: their ends are not
        read, so texts that differ only there score alike. Only the rows of `texts` (the sentences, or both sides
        of the pairs) at the limit are tokenized again, to tell those that were cut from those that fit exactly."""
        at_limit = [row for row, ids in enumerate(encoded["input_ids"]) if len(ids) >= length]
        if getattr(self, "_truncation_noted", False) or not at_limit or not isinstance(encoded["input_ids"], list):
            return
        again = self.tokenizer(*([side[row] for row in at_limit] for side in texts), verbose=False)
        if cut := sum(len(ids) > length for ids in again["input_ids"]):
            self._truncation_noted = True
            logger.warning(
                f"{cut} of {len(encoded['input_ids'])} {what} are longer than max_seq_length={length} tokens and "
                "are cut to it: what follows is not read (said once per model)"
            )
