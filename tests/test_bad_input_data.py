"""Bad data files are refused, never read silently into wrong results (issue #12).

Each row of DATA_CASES runs `run_sts.py` in-process through `run_sts.cli` (the same one-line handler as
the command) on a csv, tsv, json or jsonl data file, an STS-B folder or a Hub dataset that is missing, not
UTF-8, short of a column, with a column twice, an empty sentence or a score that is not a number or out of
range, or that does not fit the run (no dev split, the columns of another loss). It checks the exit status,
that the last line of stderr is the one error line and matches the row, and that the run wrote no results,
no model weights and no checkpoint (`check_cli_refusal` in `bad_input_cases.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .bad_input_cases import GOOD_TRAIN, TRAIN_FILE, CLICase, check_cli_refusal, folders, jsonl  # noqa: F401

TWO_SCORE_KEYS = '{"sentence1": "a", "sentence2": "b", "score": 1, "score": 4}\n'  # json.dumps cannot write it
LATIN_1 = "sentence1,sentence2,score\nA man plays.,A dog runs.,1\nA café opens.,A dog runs.,2\n".encode("latin-1")


LABELLED = ("A man is playing a guitar.", "A woman slices an onion.")


def labelled(*labels: int) -> str:
    return jsonl(*({"sentence1": LABELLED[0], "sentence2": LABELLED[1], "label": label} for label in labels))


def saved_softmax_of_2_classes(tmp: Path, saved_folders: dict) -> None:
    """A `setup` writing {tmp}/softmax-2: a saved `siamese` model whose softmax classifier has 2 classes."""
    from sts_models import STSSiameseModel

    STSSiameseModel.from_encoder(saved_folders["encoder"], loss="softmax", num_labels=2).save_pretrained(
        tmp / "softmax-2"
    )


def saved_bert_scoring_0_to_1(tmp: Path, saved_folders: dict) -> None:
    """A `setup` writing {tmp}/bert-0-1: a saved `bert` model of score range 0-1."""
    from sts_models import STSRegressionModel

    STSRegressionModel.from_encoder(saved_folders["encoder"], score_max=1.0).save_pretrained(tmp / "bert-0-1")


DATA_CASES = [
    # values the model has no room for: class labels of no class of the loss, scores outside a saved model's range
    CLICase(
        "negative-class-label",
        f"{TRAIN_FILE} --arch siamese --loss softmax",
        r"the train data: label -1 of row 1 is not one of the classes of loss 'softmax' \(0 to 1: the classes of its "
        r"softmax classifier, learnt from the train labels\)",
        files=(("train.jsonl", labelled(-1, 0, 1)),),
    ),
    CLICase(
        "dev-label-of-no-train-class",
        f"{TRAIN_FILE} --arch siamese --loss softmax --validation_file {{tmp}}/dev.jsonl --do_eval",
        r"the validation data: label 2 of row 3 is not one of the classes of loss 'softmax' \(0 to 1",
        files=(("train.jsonl", labelled(0, 1)), ("dev.jsonl", labelled(0, 1, 2))),
    ),
    # a saved softmax model keeps its classifier: labels of more classes are refused as such, with --loss softmax
    # given again or not (they were refused as weights that do not fit, or as classes "learnt from the train labels")
    *(
        CLICase(
            f"label-of-no-class-of-a-saved-softmax-model{flags.replace(' ', '')}",
            f"{TRAIN_FILE.replace('{encoder}', '{tmp}/softmax-2')} --arch siamese{flags}",
            r"the train data: label 2 of row 3 is not one of the classes of loss 'softmax' \(0 to 1: the classes of "
            r"its softmax classifier\)",
            files=(("train.jsonl", labelled(0, 1, 2)),),
            setup=saved_softmax_of_2_classes,
        )
        for flags in ("", " --loss softmax")
    ),
    CLICase(
        "contrastive-label-beyond-1",
        f"{TRAIN_FILE} --arch siamese --loss contrastive",
        r"the train data: label 2 of row 3 is not one of the classes of loss 'contrastive' \(0 to 1\)",
        files=(("train.jsonl", labelled(0, 1, 2)),),
    ),
    CLICase(
        "score-outside-a-saved-models-range",
        f"{TRAIN_FILE.replace('{encoder}', '{tmp}/bert-0-1')}",
        r"{tmp}/train.jsonl, line 2: score 4.6 is outside the score range \[0.0, 1.0\]",  # the saved model's range
        setup=saved_bert_scoring_0_to_1,
    ),
    # missing and unreadable files
    CLICase(
        "train-file-not-found",
        TRAIN_FILE.replace("train.jsonl", "missing.csv"),
        "data file not found: {tmp}/missing.csv",
    ),
    CLICase(
        "train-file-is-a-folder",
        TRAIN_FILE.replace("train.jsonl", "data"),
        r"{tmp}/data is a folder, not a data file \(csv, tsv, json or jsonl\)",
        files=(("data/train.jsonl", GOOD_TRAIN),),
    ),
    CLICase(
        "latin-1-csv",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        r"{tmp}/train.csv, line 3: not UTF-8 \(byte 0xe9 at character 6\); save the file as UTF-8",
        files=(("train.csv", LATIN_1),),
    ),
    CLICase(
        "latin-1-jsonl",
        TRAIN_FILE,
        r"{tmp}/train.jsonl, line 3: not UTF-8 \(byte 0xe9 at character 19\)",
        files=(
            (
                "train.jsonl",
                GOOD_TRAIN.encode() + '{"sentence1": "café", "sentence2": "b", "score": 1}\n'.encode("latin-1"),
            ),
        ),
    ),
    # columns: missing, doubled, misnamed, empty
    CLICase(
        "missing-column",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        r"{tmp}/train.csv: missing column\(s\) \['sentence2'\]",
        files=(("train.csv", "sentence1,text_b,score\na,b,1\n"),),
    ),
    CLICase(
        "two-score-columns-csv",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        r"{tmp}/train.csv, line 1: column\(s\) \['score'\] appear more than once",
        files=(("train.csv", "sentence1,sentence2,score,score\na,b,1,4\n"),),
    ),
    CLICase(
        "two-score-keys-jsonl",
        TRAIN_FILE,
        "{tmp}/train.jsonl, line 2: column 'score' appears twice",
        files=(("train.jsonl", GOOD_TRAIN.splitlines()[0] + "\n" + TWO_SCORE_KEYS),),
    ),
    CLICase(
        "score-column-typo",
        f"{TRAIN_FILE} --score_column scor",
        r"{tmp}/train.jsonl, line 1: no column 'scor' to read as 'score' \(--score_column\); "
        r"found columns \['sentence1', 'sentence2', 'score'\]",
    ),
    CLICase(
        "score-column-not-in-the-file",
        TRAIN_FILE.replace("train.jsonl", "train.csv") + " --score_column similarity",
        r"{tmp}/train.csv, line 2: no column 'similarity' to read as 'score' \(--score_column\)",
        files=(("train.csv", "sentence1,sentence2,gold\na,b,1\n"),),
    ),
    CLICase(
        "config-name-of-a-local-folder",  # ignored: the folder was read as it is
        "--arch siamese --model_name_or_path {encoder} --dataset_name {stsb} --dataset_config_name stsb --do_eval "
        "--max_eval_samples 2 --output_dir {out}",
        "--dataset_config_name stsb names a configuration of a Hub dataset, and --dataset_name {stsb} is a local "
        "folder: leave it out",
    ),
    CLICase(
        "column-flag-with-only-original-stsb-files",  # ignored for a folder's files
        "--arch siamese --model_name_or_path {encoder} --dataset_name {stsb} --sentence1_column text_a --do_eval "
        "--max_eval_samples 2 --output_dir {out}",
        "sts-dev.csv is an original STS-B file, whose columns have fixed places: drop the column flag naming 'text_a'",
    ),
    CLICase(
        "one-column-for-two-flags",
        f"{TRAIN_FILE} --sentence1_column text --sentence2_column text",
        "--sentence1_column and --sentence2_column both name column 'text'",
    ),
    CLICase(
        "empty-sentence",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        "{tmp}/train.csv, line 3: column 'sentence2' is empty",
        files=(("train.csv", "sentence1,sentence2,score\na man,a dog,1\nA cat.,,2\n"),),
    ),
    CLICase(
        "whitespace-only-sentence",
        TRAIN_FILE,
        r"{tmp}/train.jsonl, line 3: column 'sentence1' is empty \(only whitespace\)",
        files=(("train.jsonl", GOOD_TRAIN + jsonl({"sentence1": " \t", "sentence2": "b", "score": 2})),),
    ),
    # scores
    CLICase(
        "score-true",
        TRAIN_FILE,
        "{tmp}/train.jsonl, line 1: score True is not a number",
        files=(("train.jsonl", jsonl({"sentence1": "a", "sentence2": "b", "score": True})),),
    ),
    CLICase(
        "score-not-a-number",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        "{tmp}/train.csv, line 2: score 'n/a' is not a number",
        files=(("train.csv", "sentence1,sentence2,score\na,b,n/a\n"),),
    ),
    CLICase(
        "score-with-a-digit-separator",  # float("1_0") is 10.0: read as 10, outside no range of 0-100
        TRAIN_FILE.replace("train.jsonl", "train.csv") + " --score_max 100",
        "{tmp}/train.csv, line 3: score '1_0' is not a number",
        files=(("train.csv", "sentence1,sentence2,score\na,b,1\nc,d,1_0\n"),),
    ),
    CLICase(
        "score-not-a-number-after-blank-lines-and-a-quoted-line-break",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        "{tmp}/train.csv, line 6: score 'n/a' is not a number",
        files=(("train.csv", 'sentence1,sentence2,score\n"a\nman",b,1\n\n\nc,d,n/a\n'),),
    ),
    CLICase(
        "quote-never-closed",  # it took in the rest of the file as one sentence, and the run went on
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        "{tmp}/train.csv, line 3: a quoted field opens on this row and is never closed",
        files=(("train.csv", 'sentence1,sentence2,score\na,b,1\nA man.,"A dog.,2\nA cat.,A bird.,3\n'),),
    ),
    CLICase(
        "lone-surrogate-in-jsonl",  # json.loads reads "\ud800" as one; the tokenizer failed on it with a traceback
        TRAIN_FILE,
        r"{tmp}/train.jsonl, line 2: column 'sentence2' holds a lone surrogate U\+D800 at character 3",
        files=(
            (
                "train.jsonl",
                GOOD_TRAIN.splitlines()[0] + '\n{"sentence1": "a", "sentence2": "A \\ud800", "score": 1}\n',
            ),
        ),
    ),
    CLICase(
        "score-outside-the-range",
        f"{TRAIN_FILE} --score_max 4",
        # the commands' flags, where the Python API names its argument score_range
        r"{tmp}/train.jsonl, line 2: score 4.6 is outside the score range \[0.0, 4.0\] \(gold scores on another "
        r"scale: --score_min/--score_max\)$",
    ),
    # data that does not fit the run: no dev split, no reachable Hub dataset, columns of another loss
    CLICase(
        "do-eval-without-dev-data",
        f"{TRAIN_FILE} --do_eval",
        r"--do_eval needs a validation split; found splits \['train'\]",
    ),
    CLICase(
        "hub-dataset-unreachable",
        "--arch bert --model_name_or_path {encoder} --do_predict --output_dir {out}",
        "dataset mteb/stsbenchmark-sts could not be loaded",
    ),
    CLICase(
        "dataset-name-of-a-file-format",  # datasets read the working directory's files as csv: a traceback
        "--arch siamese --model_name_or_path {encoder} --do_eval --output_dir {out} --dataset_name csv",
        r"--dataset_name csv names a file format of datasets \(its builder of local files\), not a dataset: pass the "
        "files with --train_file/--validation_file/--test_file$",
    ),
    CLICase(
        "softmax-loss-on-scored-pairs",
        f"{TRAIN_FILE} --arch siamese --loss softmax",
        r"loss 'softmax' of the siamese model needs columns \[sentence1, sentence2, label\] \(labelled_pairs\); "
        r"the train data has columns \['sentence1', 'sentence2', 'score'\] \(scored_pairs\)",
    ),
    CLICase(
        "loss-does-not-fit-the-data",
        "--arch siamese --loss batch_hard_triplet --model_name_or_path {encoder} --train_file {tmp}/train.jsonl "
        "--do_train --output_dir {out}",
        r"loss 'batch_hard_triplet' of the siamese model needs columns \[sentence, label\] \(labelled_sentences\); "
        r"the train data has columns \['anchor', 'positive'\] \(positive_pairs\)",
        files=(("train.jsonl", jsonl({"anchor": "a man", "positive": "a person"})),),
    ),
]


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda case: case.id)
def test_cli_refuses_bad_data(case, run_sts_module, folders, tmp_path, capsys, monkeypatch):  # noqa: F811
    check_cli_refusal(case, run_sts_module, folders, tmp_path, capsys, monkeypatch)


# an empty value (`--train_file "$TRAIN"` with TRAIN unset) read the default Hub dataset instead: `{empty}` is ""
EMPTY_SOURCE_CASES = [
    CLICase(
        f"empty-{flag}",
        f"{TRAIN_FILE} --do_eval --validation_file {{tmp}}/train.jsonl --{flag} {{empty}}",
        rf"--{flag} is empty \(''; an unset variable\?\): name (a data file|a Hub dataset or a local STS-B folder), "
        "or leave the flag out$",
    )
    for flag in ("train_file", "validation_file", "test_file", "dataset_name")
]


@pytest.mark.parametrize("case", EMPTY_SOURCE_CASES, ids=lambda case: case.id)
def test_cli_refuses_an_empty_data_source(case, run_sts_module, folders, tmp_path, capsys, monkeypatch):  # noqa: F811
    check_cli_refusal(case, run_sts_module, {**folders, "empty": ""}, tmp_path, capsys, monkeypatch)
