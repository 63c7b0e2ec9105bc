"""Each data source, the original STS-B quirks, and the errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import pickle
import re

import datasets
import pytest

import sts_models.data as data_module
import sts_models.hub_data as hub_data
from sts_models import STSSiameseModel
from sts_models.data import load_sts_dataset, tokenize_dataset
from sts_models.errors import STSUserError

from .conftest import STSB_DIR

PAIRS = [("A man plays.", "Someone plays.", 4.0), ("A cat, sleeping.", 'He said "no".', 0.5)]


def test_stsb_folder_has_all_splits_with_original_counts():
    dataset = load_sts_dataset(str(STSB_DIR))
    assert {split: len(dataset[split]) for split in dataset} == {"train": 5749, "validation": 1500, "test": 1379}
    assert dataset["train"].column_names == ["sentence1", "sentence2", "score"]
    assert all(0.0 <= score <= 5.0 for score in dataset["test"]["score"])


def test_stsb_quirks_no_quoting_and_extra_columns(tmp_path):
    folder = tmp_path / "stsb"
    folder.mkdir()
    lines = [
        'main-news\tMSRvid\t2012test\t0001\t5.000\tA "quoted" word\'s here.\tA "quoted" word\'s here.',
        "main-news\theadlines\t2015\t0002\t1.5\tFirst sentence.\tSecond sentence.\tsource-a\tsource-b",
    ]
    (folder / "sts-dev.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = load_sts_dataset(str(folder))
    assert list(dataset) == ["validation"]
    assert dataset["validation"][0] == {
        "sentence1": 'A "quoted" word\'s here.',
        "sentence2": 'A "quoted" word\'s here.',
        "score": 5.0,
    }
    assert dataset["validation"][1]["sentence2"] == "Second sentence."


def test_real_stsb_line_with_quote_is_read_verbatim():
    # csv readers that honour quoting merge lines here; the STS-B files must be read with no quoting.
    dataset = load_sts_dataset(str(STSB_DIR))
    quoted = [s for s in dataset["train"]["sentence1"] if s.startswith('"')]
    assert quoted, "STS-B train has sentences that begin with a quote character"


@pytest.mark.parametrize("extension", ["csv", "tsv", "json", "jsonl"])
def test_files_with_custom_columns(tmp_path, extension):
    path = tmp_path / f"pairs.{extension}"
    records = [{"left": a, "right": b, "gold": s, "other": 1} for a, b, s in PAIRS]
    if extension in ("csv", "tsv"):
        import csv

        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]), delimiter="," if extension == "csv" else "\t")
            writer.writeheader()
            writer.writerows(records)
    elif extension == "json":
        path.write_text(json.dumps(records), encoding="utf-8")
    else:
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    dataset = load_sts_dataset(
        data_files={"train": str(path)}, column_mapping={"left": "sentence1", "right": "sentence2", "gold": "score"}
    )
    assert dataset["train"].to_list() == [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in PAIRS]


@pytest.mark.parametrize("extension", ["csv", "tsv", "json", "jsonl"])
def test_files_with_a_byte_order_mark_are_read(tmp_path, extension):
    """A UTF-8 byte order mark (as spreadsheet exports write) is no part of the first column's name or the JSON."""
    records = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in PAIRS]
    if extension == "json":
        content = json.dumps(records)
    elif extension == "jsonl":
        content = "".join(json.dumps(record) + "\n" for record in records)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]), delimiter="," if extension == "csv" else "\t")
        writer.writeheader()
        writer.writerows(records)
        content = buffer.getvalue()
    path = tmp_path / f"pairs.{extension}"
    path.write_text(content, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert load_sts_dataset(data_files={"train": str(path)})["train"].to_list() == records


@pytest.mark.parametrize("extension", ["json", "jsonl", "csv"])
def test_class_labels_written_as_floats_are_integers(tmp_path, extension):
    """`"label": 1.0` (as pandas writes whole numbers) is class 1, typed int64 as a csv file's labels are: a float
    column would be taken for scores by the losses of classes, and would pass `1.0 in range(2)`."""
    records = [{"sentence1": a, "sentence2": b, "label": float(i % 2)} for i, (a, b, _) in enumerate(PAIRS)]
    path = tmp_path / f"pairs.{extension}"
    if extension == "json":
        path.write_text(json.dumps(records), encoding="utf-8")
    elif extension == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    else:
        path.write_text("sentence1,sentence2,label\n" + "".join(f"{a},{b},{c:.1f}\n" for a, b, c in
                        ((r["sentence1"].replace(",", ""), r["sentence2"].replace(",", ""), r["label"])
                         for r in records)), encoding="utf-8")  # fmt: skip
    train = load_sts_dataset(data_files={"train": str(path)})["train"]
    assert train.features["label"].dtype == "int64"
    assert train["label"] == [i % 2 for i in range(len(PAIRS))]
    assert all(type(label) is int for label in train["label"])


def test_a_csv_field_longer_than_csvs_default_limit_is_read(tmp_path):
    """csv's 131,072-character limit on a field is no limit of pandas or of jsonl: the long sentence is read (and
    truncated by the tokenizer), where it was a csv.Error traceback."""
    long = "word " * 30_000
    path = tmp_path / "pairs.tsv"
    path.write_text(f"sentence1\tsentence2\tscore\nA man.\t{long}\t1\nA dog.\tA cat.\tn/a\n", encoding="utf-8")
    records = data_module.read_records(str(path))
    assert next(records) == (f"{path}, line 2", {"sentence1": "A man.", "sentence2": long, "score": "1"})


def test_original_stsb_file_passed_as_a_file():
    dataset = load_sts_dataset(data_files={"test": str(STSB_DIR / "sts-test.csv")})
    assert len(dataset["test"]) == 1379


def test_files_override_folder_splits(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) for a, b, s in PAIRS))
    dataset = load_sts_dataset(str(STSB_DIR), data_files={"test": str(path)})
    assert len(dataset["train"]) == 5749 and len(dataset["test"]) == 2


def test_hub_dataset_is_renamed_and_checked(monkeypatch):
    hub = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"split": [split] * 2, "sentence1": ["a", "b"], "sentence2": ["c", "d"], "score": [1.0, 4.5]}
            )
            for split in ("train", "validation", "test")
        }
    )
    calls = []
    monkeypatch.setattr(hub_data, "load_dataset", lambda *args, **kwargs: calls.append(args) or hub)
    dataset = load_sts_dataset()
    assert calls == [("mteb/stsbenchmark-sts", None)]
    assert dataset["validation"].to_list() == [
        {"sentence1": "a", "sentence2": "c", "score": 1.0},
        {"sentence1": "b", "sentence2": "d", "score": 4.5},
    ]
    with pytest.raises(STSUserError, match=r"missing column\(s\) \['score'\]"):
        load_sts_dataset(column_mapping={"score": "similarity"}, data_shapes={"train": "scored_pairs"})


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "sentence1,sentence2\na,b\n",
            r"pairs.csv: missing column\(s\) \['score'\] of \[sentence1, sentence2, score\] \(scored_pairs\) or "
            r"\['label'\] of \[sentence1, sentence2, label\] \(labelled_pairs\); found columns \['sentence1', 'sentence2'\]",
        ),
        ("sentence1,sentence2,score\na,b,high\n", r"pairs.csv, line 2: score 'high' is not a number"),
        # Python's digit separator: float("0_5") is 5.0
        ("sentence1,sentence2,score\na,b,1\nc,d,0_5\n", r"pairs.csv, line 3: score '0_5' is not a number"),
        (
            "sentence1,sentence2,score\na,b,7\n",
            r"pairs.csv, line 2: score 7.0 is outside the score range \[0.0, 5.0\]",
        ),
        ("sentence1,sentence2,score\n", r"pairs.csv: no examples found"),
        ("sentence1,sentence2,label\na,b,0.5\n", r"pairs.csv, line 2: label '0.5' is not an integer class"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "pairs.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(STSUserError, match=message):
        load_sts_dataset(data_files={"train": str(path)})


def test_bad_stsb_line_names_file_and_line(tmp_path):
    folder = tmp_path / "stsb"
    folder.mkdir()
    (folder / "sts-train.csv").write_text("g\tf\t2012\t1\t3.0\ta\tb\ng\tf\t2012\t2\tabc\ta\tb\n", encoding="utf-8")
    with pytest.raises(STSUserError, match=r"sts-train.csv, line 2: score 'abc' is not a number"):
        load_sts_dataset(str(folder))
    (folder / "sts-train.csv").write_text("g\tf\t2012\t1\t3.0\ta\tb\ng\tf\t2012\t2\t1_0\ta\tb\n", encoding="utf-8")
    with pytest.raises(STSUserError, match=r"sts-train.csv, line 2: score '1_0' is not a number"):
        load_sts_dataset(str(folder))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data_files": {"train": "/no/such/file.csv"}}, "data file not found: /no/such/file.csv"),
        ({"dataset_name": "./no/such/folder"}, "dataset folder not found"),
        ({"data_files": {"train": __file__}}, "unsupported file type '.py'"),
    ],
)
def test_missing_or_unsupported_sources(kwargs, message):
    with pytest.raises(STSUserError, match=message):
        load_sts_dataset(**kwargs)


def test_folder_without_stsb_files(tmp_path):
    with pytest.raises(STSUserError, match="has none of sts-train.csv"):
        load_sts_dataset(str(tmp_path))


@pytest.mark.parametrize(
    "case, api, flags",
    [
        ("folder-without-stsb-files", "pass data_files={split: path} for other layouts", "pass --train_file/"),
        ("hub-dataset-offline", "pass a local STS-B folder as dataset_name or files as data_files", "--dataset_name"),
        ("renamed-column-missing", "to read as 'sentence1' (column_mapping)", "(--sentence1_column)"),
    ],
)
def test_a_hint_names_the_api_argument_and_the_commands_flag(case, api, flags, tmp_path, monkeypatch):
    """From the Python API an error names `load_sts_dataset`'s argument; the commands print their flag instead
    (`STSUserError.command_line_message`, which `run_cli` prints)."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    path = tmp_path / "train.jsonl"
    path.write_text('{"sentence1": "A dog runs.", "sentence2": "A dog is running.", "score": 4.6}\n')
    kwargs = {
        "folder-without-stsb-files": {"dataset_name": str(tmp_path / "empty")},
        "hub-dataset-offline": {"dataset_name": "someone/no-such-data"},
        "renamed-column-missing": {"data_files": {"train": str(path)}, "column_mapping": {"s1": "sentence1"}},
    }[case]
    (tmp_path / "empty").mkdir()
    with pytest.raises(STSUserError) as refused:
        load_sts_dataset(**kwargs)
    message, printed = str(refused.value), refused.value.command_line_message()
    assert api in message and "--" not in message, message
    assert flags in printed and api not in printed, printed
    assert pickle.loads(pickle.dumps(refused.value)).command_line_message() == printed  # a worker process's error


def test_tokenize_dataset_scales_labels(tiny_encoder_dir, stsb_pairs):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, score_min=1.0, score_max=5.0)
    dataset = datasets.Dataset.from_dict(
        {"sentence1": ["a man", "a dog"], "sentence2": ["a man", "a cat"], "score": [5.0, 3.0]}
    )
    tokenized = tokenize_dataset(dataset, model)
    assert set(tokenized.column_names) == {
        "input_ids_1",
        "attention_mask_1",
        "input_ids_2",
        "attention_mask_2",
        "labels",
    }
    assert tokenized["labels"] == [1.0, 0.5]


def test_length_column_feeds_the_trainers_length_grouped_sampler(tiny_encoder_dir, tmp_path):
    """Pairs encoded per sentence have no `input_ids` for the sampler to measure: it reads the length column."""
    from transformers import Trainer, TrainingArguments

    from sts_models import DataCollatorForSentencePairs

    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    sentences = ["a man", "a dog runs in the park", "a cat", "two men play a game of chess outside", "a bird"] * 4
    dataset = datasets.Dataset.from_dict({"sentence1": sentences, "sentence2": sentences[::-1], "score": [2.5] * 20})
    tokenized = tokenize_dataset(dataset, model, length_column="length")
    assert tokenized["length"] == [
        len(first) + len(second) for first, second in zip(tokenized["input_ids_1"], tokenized["input_ids_2"])
    ]
    args = TrainingArguments(
        str(tmp_path), per_device_train_batch_size=4, train_sampling_strategy="group_by_length",
        remove_unused_columns=False, report_to="none", use_cpu=True,
    )  # fmt: skip
    trainer = Trainer(model, args, train_dataset=tokenized, data_collator=DataCollatorForSentencePairs())
    batches = list(trainer.get_train_dataloader())
    assert sum(len(batch["labels"]) for batch in batches) == 20
    assert all("length" not in batch for batch in batches)  # the collator keeps only the model's inputs


@pytest.mark.parametrize("extension", ["jsonl", "csv", "tsv"])
def test_local_files_are_arrow_backed_and_cached(tmp_path, extension):
    """A clean file goes through `datasets` (Arrow files on disk, the row checks as a map), and loading it again
    reads the same cache files instead of converting it again. (csv and tsv files fell back to the row reader: the
    csv builder of datasets 5 takes no `dtype`.)"""
    path = tmp_path / f"train.{extension}"
    if extension == "jsonl":
        path.write_text("".join(json.dumps({"anchor": f"a {i}", "positive": f"b {i}"}) + "\n" for i in range(50)))
    else:
        separator = "," if extension == "csv" else "\t"
        path.write_text(f"anchor{separator}positive\n" + "".join(f"a {i}{separator}b {i}\n" for i in range(50)))
    cache = str(tmp_path / "cache")
    first = load_sts_dataset(data_files={"train": str(path)}, cache_dir=cache)["train"]
    assert first.cache_files and first.column_names == ["anchor", "positive"] and len(first) == 50
    second = load_sts_dataset(data_files={"train": str(path)}, cache_dir=cache)["train"]
    assert [f["filename"] for f in second.cache_files] == [f["filename"] for f in first.cache_files]
    assert second[49] == {"anchor": "a 49", "positive": "b 49"}


def test_csv_fields_are_read_as_the_text_they_are(tmp_path):
    """A sentence that looks like a number stays text, and an empty field is refused as the row reader refuses it."""
    path = tmp_path / "train.csv"
    path.write_text("sentence1,sentence2,score\n1984,2001,1.5\nNA,None,4\n")
    data = load_sts_dataset(data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))["train"]
    assert data["sentence1"] == ["1984", "NA"] and data["sentence2"] == ["2001", "None"]
    assert data["score"] == [1.5, 4.0]
    path.write_text("sentence1,sentence2,score\na man,a dog,1.5\n,a cat,4\n")
    with pytest.raises(STSUserError, match=r"train.csv, line 3: column 'sentence1' is empty"):
        load_sts_dataset(data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))


def test_tokenized_features_are_cached_by_data_and_tokenizer(tiny_encoder_dir, tmp_path):
    from sts_models.data import tokenization_fingerprint

    path = tmp_path / "train.jsonl"
    path.write_text(
        "".join(json.dumps({"sentence1": "a man", "sentence2": "a dog", "score": i}) + "\n" for i in range(5))
    )
    data = load_sts_dataset(data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))["train"]
    from sts_models import STSRegressionModel

    siamese = STSSiameseModel.from_encoder(tiny_encoder_dir)
    bert = STSRegressionModel.from_encoder(tiny_encoder_dir)
    assert tokenization_fingerprint(data, siamese) == tokenization_fingerprint(data, siamese)
    assert tokenization_fingerprint(data, siamese) != tokenization_fingerprint(data, bert)
    assert tokenization_fingerprint(data, siamese) != tokenization_fingerprint(data, siamese, "length")
    first = tokenize_dataset(data, siamese)
    again = tokenize_dataset(data, siamese)
    assert first.cache_files and again.cache_files == first.cache_files


def write_jsonl(path, pairs=PAIRS) -> str:
    path.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n" for a, b, s in pairs))
    return str(path)


def no_hub(*args, **kwargs):
    pytest.fail(f"the Hub dataset was loaded: {args}")


def test_dev_names_the_validation_split_everywhere(tmp_path, monkeypatch):
    """ "dev" in data_files, splits and data_shapes is the validation split (as a Hub dataset's dev split is); it was
    dropped, and a dev file alone made the default Hub dataset be loaded instead."""
    monkeypatch.setattr(hub_data, "load_dataset", no_hub)
    train, dev = write_jsonl(tmp_path / "t.jsonl"), write_jsonl(tmp_path / "v.jsonl", PAIRS[:1])
    assert {split: len(d) for split, d in load_sts_dataset(data_files={"train": train, "dev": dev}).items()} == {
        "train": 2,
        "validation": 1,
    }
    assert list(load_sts_dataset(data_files={"dev": dev})) == ["validation"]
    assert len(load_sts_dataset(str(STSB_DIR), splits=["dev"])["validation"]) == 1500
    with pytest.raises(STSUserError, match=r"missing column\(s\) \['label'\]"):
        load_sts_dataset(data_files={"dev": dev}, data_shapes={"dev": "labelled_pairs"})
    # a file given: the default Hub dataset is not read, whichever splits are read
    assert dict(load_sts_dataset(data_files={"test": dev}, splits=["train"])) == {}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data_files": {"valid": "v.csv"}}, "data_files key 'valid' is none of train, validation (dev), test"),
        ({"data_files": {"Test": "v.csv"}}, "data_files key 'Test' is none of"),
        ({"data_files": {"dev": "a.csv", "validation": "b.csv"}}, "data_files names the validation split twice"),
        ({"dataset_name": str(STSB_DIR), "splits": ["valid"]}, "splits entry 'valid' is none of"),
        ({"dataset_name": str(STSB_DIR), "data_shapes": {"eval": "scored_pairs"}}, "data_shapes key 'eval' is none"),
    ],
)
def test_a_split_name_of_no_split_is_refused(kwargs, message):
    with pytest.raises(STSUserError, match=re.escape(message)):
        load_sts_dataset(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"dataset_name": ""},
            "dataset_name is empty (''): name a Hub dataset or a local STS-B folder, or leave it out",
        ),
        ({"data_files": {"train": ""}}, "data_files['train'] is empty (''): name a data file, or leave it out"),
        ({"data_files": {"dev": " "}, "splits": ["train"]}, "data_files['dev'] is empty (' ')"),
    ],
)
def test_an_empty_data_source_is_refused(kwargs, message, monkeypatch):
    """It read the default Hub dataset instead (the usual result of `--train_file "$TRAIN"` with TRAIN unset)."""
    monkeypatch.setattr(hub_data, "load_dataset", no_hub)
    with pytest.raises(STSUserError, match=re.escape(message)):
        load_sts_dataset(**kwargs)


TEXT_AB = {"text_a": "sentence1", "text_b": "sentence2"}


def write_headered(path, pairs=PAIRS) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text_a", "text_b", "score"])
        writer.writerows(pairs)
    return str(path)


def test_column_mapping_reads_headered_files_of_an_stsb_folder(tmp_path):
    """A folder's sts-*.csv files may be csv files with a header of other names: the mapping was not applied to
    them, and the error told the user to pass the very flags given."""
    folder = tmp_path / "headered"
    folder.mkdir()
    write_headered(folder / "sts-train.csv")
    dataset = load_sts_dataset(str(folder), column_mapping=TEXT_AB, cache_dir=str(tmp_path / "cache"))
    assert dataset["train"].to_list() == [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in PAIRS]


def test_column_mapping_skips_original_stsb_files_beside_files_that_read_it(tmp_path):
    """An original STS-B file (its columns in fixed places) is read as it is where another file of the call reads the
    mapping; the mapping was refused for it, asking to drop a flag the other file needs."""
    train = write_headered(tmp_path / "train.csv")
    files = {"train": train, "validation": str(STSB_DIR / "sts-dev.csv")}
    dataset = load_sts_dataset(data_files=files, column_mapping=TEXT_AB, cache_dir=str(tmp_path / "cache"))
    assert len(dataset["train"]) == 2 and len(dataset["validation"]) == 1500
    folder = load_sts_dataset(
        str(STSB_DIR), data_files={"train": train}, column_mapping=TEXT_AB, splits=["dev", "train"]
    )
    assert len(folder["train"]) == 2 and len(folder["validation"]) == 1500


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # only original STS-B files read: the mapping would be ignored (it was, for a folder's files)
        ({"dataset_name": str(STSB_DIR), "column_mapping": TEXT_AB},
         "sts-train.csv is an original STS-B file, whose columns have fixed places: drop 'text_a' from column_mapping"),
        ({"data_files": {"test": str(STSB_DIR / "sts-test.csv")}, "column_mapping": TEXT_AB},
         "sts-test.csv is an original STS-B file"),
        # a Hub dataset's configuration, where the dataset is a folder (it was ignored)
        ({"dataset_name": str(STSB_DIR), "dataset_config_name": "stsb"},
         f"dataset_config_name 'stsb' names a configuration of a Hub dataset, and {STSB_DIR} is a local folder"),
    ],
)  # fmt: skip
def test_options_a_folder_of_original_stsb_files_cannot_read_are_refused(kwargs, message):
    with pytest.raises(STSUserError, match=re.escape(message)):
        load_sts_dataset(**kwargs)


@pytest.mark.parametrize("name", ["csv", "json", "parquet"])
def test_a_file_format_of_datasets_is_no_dataset_name(name, monkeypatch):
    """`datasets` read the working directory's files with its builder (a traceback after parsing code as csv)."""
    monkeypatch.setattr(hub_data, "load_dataset", no_hub)
    with pytest.raises(STSUserError) as refused:
        load_sts_dataset(name)
    assert str(refused.value) == (
        f"dataset_name {name} names a file format of datasets (its builder of local files), not a dataset: pass the "
        "files as data_files={split: path}"
    )
    assert refused.value.command_line_message().endswith("with --train_file/--validation_file/--test_file")


def test_any_failure_to_load_a_hub_dataset_is_one_line(monkeypatch):
    def fails(*args, **kwargs):
        raise datasets.exceptions.DatasetGenerationError("An error occurred while generating the dataset\nmore")

    monkeypatch.setattr(hub_data, "load_dataset", fails)
    with pytest.raises(STSUserError, match=r"^dataset someone/data could not be loaded: An error occurred while "
                       r"generating the dataset$"):  # fmt: skip
        load_sts_dataset("someone/data")
    monkeypatch.setattr(hub_data, "load_dataset", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        load_sts_dataset("someone/data")


def test_a_column_of_another_shape_after_the_first_record_is_refused(tmp_path):
    """The shape is detected from the first record: a later record's score (or negative) was dropped silently, and
    `predict` reported no metrics for a file whose first pair had no score."""
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"sentence1": "A man.", "sentence2": "A dog."}\n\n{"sentence1": "A cat.", "sentence2": "A cow.", "score": 2}\n'
    )
    with pytest.raises(STSUserError) as refused:
        list(data_module.read_sentence_pairs(str(path)))
    assert str(refused.value) == (
        f"{path}, line 3: column 'score' is not in the first record ({path}, line 1), whose columns make the data "
        "[sentence1, sentence2] (pairs): give every record the columns of one data shape"
    )
    path.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d", "negative": "e"}\n')
    with pytest.raises(STSUserError, match=r"line 2: column 'negative' is not in the first record"):
        load_sts_dataset(data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))
    # columns no shape reads, and a shape given, are no such column
    path.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d", "id": 7}\n')
    assert len(load_sts_dataset(data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))["train"]) == 2


def test_an_original_stsb_file_starting_with_a_blank_line_is_recognized(tmp_path):
    """The layout was told from the first line only (blank: a csv file with a header, "missing column(s)")."""
    path = tmp_path / "sts-dev.csv"
    lines = (STSB_DIR / "sts-dev.csv").read_text(encoding="utf-8").splitlines()[:3]
    path.write_text("\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert len(load_sts_dataset(data_files={"dev": str(path)})["validation"]) == 3
    assert [where for where, _ in data_module.read_sentence_pairs(str(path), with_places=True)][0].endswith("line 2")


def test_a_tsv_field_spanning_a_line_break_is_refused(tmp_path):
    """An unquoted tsv whose sentence starts with a quote: CSV quoting took in the next field and row silently (2 rows
    of 3, sentence1 'Hello\\tworld\\n3.0\\tfoo')."""
    path = tmp_path / "pairs.tsv"
    path.write_text('score\tsentence1\tsentence2\n4.0\t"Hello\tworld\n3.0\tfoo"\tbar\n2.0\tx\ty\n', encoding="utf-8")
    message = "pairs.tsv, line 2: a quoted field spans a line break, taking in the rows after it: an unquoted sentence"
    with pytest.raises(STSUserError, match=re.escape(message)):
        load_sts_dataset(data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(STSUserError, match=re.escape(message)):
        list(data_module.read_sentence_pairs(str(path)))
    # a quoted field is read unquoted, as Python's csv and pandas write it, a tab inside included
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t").writerows([("score", "sentence1", "sentence2"), (4.0, 'He said "hi"', "b"),
                                                      (3.0, "A man\tplays.", "c")])  # fmt: skip
    data = load_sts_dataset(data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache-2"))["train"]
    assert data["sentence1"] == ['He said "hi"', "A man\tplays."]
    assert [row["sentence1"] for row in data_module.read_sentence_pairs(str(path))] == data["sentence1"]
