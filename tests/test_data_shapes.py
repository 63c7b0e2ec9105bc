"""Recognizing a split's data shape from its columns, and what the refusal suggests."""

from __future__ import annotations

import re

import pytest

from sts_models.data_shapes import detect_data_shape
from sts_models.errors import STSUserError


@pytest.mark.parametrize(
    "columns, shape",
    [
        (["sentence1", "sentence2", "score", "id"], "scored_pairs"),
        (["sentence1", "sentence2", "label"], "labelled_pairs"),
        (["anchor", "positive", "negative"], "triplets"),
        (["anchor", "positive"], "positive_pairs"),
        (["sentence", "label"], "labelled_sentences"),
    ],
)
def test_the_shape_is_recognized_from_the_columns(columns, shape):
    assert detect_data_shape(columns, "data.csv") == shape


@pytest.mark.parametrize(
    "columns, data_shape, message",
    [
        # pair columns under other names: the flags that read them
        (
            ["s1", "s2", "score"],
            "scored_pairs",
            r"missing column\(s\) \['sentence1', 'sentence2'\] of \[sentence1, sentence2, score\] \(scored_pairs\); "
            r"found columns \['s1', 's2', 'score'\]\. For \[sentence1, sentence2, score\] \(scored_pairs\), name the "
            r"columns to read as \['sentence1', 'sentence2'\] with --sentence1_column, --sentence2_column",
        ),
        # both a label and a score: every closest shape is named, and the flags of the shape they can make
        (
            ["a", "b", "label", "score"],
            None,
            r"\(labelled_sentences\); found columns \['a', 'b', 'label', 'score'\]\. For \[sentence1, sentence2, "
            r"score\] \(scored_pairs\), name the columns to read as \['sentence1', 'sentence2'\] with "
            r"--sentence1_column, --sentence2_column",
        ),
        # triplets under other names, and pairs with no score column at all: no flag can help, none is suggested
        (["query", "pos", "neg"], "triplets", r"Add or rename the columns in the data; no --NAME_column flag"),
        (["sentence1", "sentence2"], "scored_pairs", r"Add or rename the columns in the data; no --NAME_column flag"),
        (["text", "label"], None, r"\['sentence'\] of \[sentence, label\] \(labelled_sentences\); .* Add or rename"),
    ],
)
def test_a_refusal_suggests_only_flags_that_can_help(columns, data_shape, message):
    with pytest.raises(STSUserError) as refused:
        detect_data_shape(columns, "data.csv", data_shape)
    # the commands print the flags; from the Python API, the hint names column_mapping and no flag
    printed, api = refused.value.command_line_message(), str(refused.value)
    assert re.search(message, printed), printed
    assert api.startswith("data.csv: ") and "\n" not in api and "\n" not in printed and "--" not in api
    if "Add or rename" in message:
        assert "--sentence1_column" not in printed and "column_mapping" not in api
    else:
        assert "with column_mapping={column: name}" in api
