"""Export a siamese model as a folder that `sentence_transformers.SentenceTransformer` loads.

The folder uses the module layout every sentence-transformers release since 2.0 reads: the encoder
and tokenizer at the top, `1_Pooling/`, and `2_Normalize/` when embeddings are normalized.
"""

from __future__ import annotations

import json
import os

POOLING_FLAGS = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}


def _write_json(path: str, content) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)


def save_sentence_transformer(model, folder: str) -> None:
    """Write `model` (an `STSSiameseModel` with the cosine head) as a SentenceTransformer folder."""
    config = model.config
    if config.head != "cosine":
        raise ValueError("Only the cosine head exports to sentence-transformers (its mlp head has no equivalent)")
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    model.encoder.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if config.normalize_embeddings:
        os.makedirs(os.path.join(folder, "2_Normalize"), exist_ok=True)
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
    _write_json(os.path.join(folder, "modules.json"), modules)
    _write_json(
        os.path.join(folder, "sentence_bert_config.json"),
        {"max_seq_length": config.max_seq_length, "do_lower_case": False},
    )
    pooling = {"word_embedding_dimension": model.hidden_size, "pooling_mode_mean_sqrt_len_tokens": False}
    pooling.update({flag: mode == config.pooling for mode, flag in POOLING_FLAGS.items()})
    _write_json(os.path.join(folder, "1_Pooling", "config.json"), pooling)
    _write_json(os.path.join(folder, "config_sentence_transformers.json"), {"similarity_fn_name": "cosine"})
