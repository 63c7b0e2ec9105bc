"""Distillation: trained STS models (teachers) label pairs for a student of any arch.

Two uses of a teacher, as in Augmented SBERT (Thakur et al., 2021):

- **silver pairs**: new pairs of the *training* sentences, each sentence with its nearest neighbours by the
  teacher's embeddings (optionally plus a share of random pairs), labelled by the teacher. Gold pairs are never
  repeated, no sentence comes from outside the training split, and none that is also a dev or test sentence (STS-B
  shares about 250 sentences between train and each of them): no dev or test pair is ever labelled for training.
  Sentences that differ only in case or spacing count as one.
  `silver_pairs_per_epoch` reads a different part of them each epoch (`sampling.SilverPerEpochSampler`).
- **soft targets**: each gold score mixed with the teacher's score of the same pair
  (`(1 - teacher_score_weight) * gold + teacher_score_weight * teacher`).

A siamese student can also learn the siamese teachers' similarities of the pairs that any two sentences of a
training batch make (`teacher_similarity_weight`, `losses.similarity_distillation_loss`): the teachers embed the
training sentences once (`teacher_embeddings.cached_sentence_embeddings`, a file per teacher that the silver pairs'
neighbours share).

Labels are cached in one JSON-lines file per teacher, training data and sampling options, so a second run with
the same ones reads them back instead of labelling again (the seed counts only where random pairs are drawn).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets
from transformers import AutoConfig

from .architectures import MODEL_TYPES, check_model_type, load_model, read_config
from .artifacts import folder_fingerprint
from .configuration import STSSiameseConfig
from .errors import NonFiniteScoresError, STSUserError, refuse_dropped_text
from .hub import local_model_folder, looks_like_local_path
from .model_folder import check_model_folder
from .sampling import check_train_sampling_strategy
from .silver_cache import SILVER_FORMAT, data_fingerprint, read_silver_cache, write_json_lines
from .teacher_embeddings import cached_sentence_embeddings, default_cache_dir, fingerprint, teacher_device

logger = logging.getLogger(__name__)


@dataclass
class DistillationArguments:
    """Options of `run_sts.py --teacher_name_or_path`: a trained STS model (or several, averaged) labels pairs for
    the model being trained."""

    teacher_name_or_path: list[str] | None = field(
        default=None,
        metadata={
            "help": "Trained STS model(s) (folder or Hub id) whose scores label silver pairs and soft targets; "
            "several are averaged.",
            "nargs": "+",
        },
    )
    silver_neighbors: int = field(
        default=3,
        metadata={"help": "Silver pairs: each training sentence with its N nearest training sentences (0: none)."},
    )
    silver_random_share: float = field(
        default=0.0, metadata={"help": "Silver pairs: random pairs added, as a share of the neighbour pairs."}
    )
    silver_pairs_per_epoch: int = field(
        default=0,
        metadata={
            "help": "Silver pairs: each epoch reads a different N of them, the next N of a shuffled pass through all "
            "(0: all of them every epoch): many neighbours at the cost of few."
        },
    )
    teacher_score_weight: float = field(
        default=0.0,
        metadata={"help": "Soft targets: weight of the teacher's score against the gold score of gold pairs (0-1)."},
    )
    teacher_similarity_weight: float = field(
        default=0.0,
        metadata={
            "help": "Siamese students: weight of a CoSENT loss ranking the pairs that any two sentences of a batch "
            "make as the siamese teachers' embeddings rank them (0: off)."
        },
    )
    silver_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of the silver-label cache (default: $HF_HOME/sts_models/silver)."},
    )

    def check(self, train_sampling_strategy: str = "random") -> None:
        """Refuse bad values in one line, before any labelling; `train_sampling_strategy` is the run's."""
        if self.teacher_name_or_path is None:  # every other option of distillation would be ignored
            for option in fields(self):
                if option.name != "teacher_name_or_path" and getattr(self, option.name) != option.default:
                    raise STSUserError(f"--{option.name} needs --teacher_name_or_path: there is no teacher")
            return
        if self.silver_pairs_per_epoch < 0:
            raise STSUserError(f"--silver_pairs_per_epoch {self.silver_pairs_per_epoch} must be 0 or more")
        if self.silver_pairs_per_epoch:
            check_train_sampling_strategy(train_sampling_strategy)
        if self.silver_neighbors < 0:
            raise STSUserError(f"--silver_neighbors {self.silver_neighbors} must be 0 or more")
        if not 0.0 <= self.silver_random_share <= 10.0:
            raise STSUserError(f"--silver_random_share {self.silver_random_share} must be between 0 and 10")
        for option in ("silver_random_share", "silver_pairs_per_epoch"):  # a share of, a part of no silver pairs
            if getattr(self, option) and not self.silver_neighbors:
                raise STSUserError(f"--{option} needs --silver_neighbors above 0: there are no silver pairs")
        if not 0.0 <= self.teacher_score_weight <= 1.0:
            raise STSUserError(f"--teacher_score_weight {self.teacher_score_weight} must be between 0 and 1")
        if not (math.isfinite(self.teacher_similarity_weight) and self.teacher_similarity_weight >= 0):
            raise STSUserError(f"--teacher_similarity_weight {self.teacher_similarity_weight} must be 0 or more")


@contextmanager
def teacher_errors(name: str, path: str) -> Iterator[None]:
    """Errors of reading a teacher as one line naming it."""
    try:
        yield
    except (STSUserError, OSError, ValueError) as error:
        message = str(error).removeprefix(f"{path}: ") if isinstance(error, STSUserError) else str(error)
        raise STSUserError(f"--teacher_name_or_path {name}: {' '.join(message.split())}") from None


def teacher_configs(names: list[str], score_range: tuple[float, float]) -> list[tuple[str, AutoConfig]]:
    """Each teacher's folder and config, that of a trained STS model whose score range is the student's; one line
    naming the teacher otherwise (a missing folder, a plain encoder, another score range). Reads no weights."""
    teachers = []
    for name, path in zip(names, resolve_teachers(names)):
        with teacher_errors(name, path):
            check_model_folder(path)
            check_model_type(path, MODEL_TYPES)
            config = read_config(path)
            if config.model_type not in MODEL_TYPES:
                raise STSUserError(
                    f"a plain {config.model_type} encoder, not a trained STS model: train one first (run_sts.py --arch ...)"
                )
        teacher_range = (config.score_min, config.score_max)
        if tuple(map(float, teacher_range)) != tuple(map(float, score_range)):
            raise STSUserError(
                f"--teacher_name_or_path {name}: scores on {teacher_range[0]:g}-{teacher_range[1]:g}, the student "
                f"on {score_range[0]:g}-{score_range[1]:g}; give a teacher trained on the same score range"
            )
        teachers.append((path, config))
    return teachers


@contextmanager
def deepspeed_zero3_set_aside() -> Iterator[None]:
    """Under the run's ZeRO-3 config, transformers loads every model partitioned across the processes
    (`deepspeed.zero.Init`, a collective of all of them): a teacher, loaded by the processes that label alone, would
    wait for the others forever, and could not score in parts. Within this block, models load whole."""
    from transformers.integrations import deepspeed as hf_deepspeed

    held = hf_deepspeed._hf_deepspeed_config_weak_ref  # no public getter; `set_hf_deepspeed_config` puts it back
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = held


def load_teacher(name: str, path: str):
    """The teacher model in `path` (checked by `teacher_configs`), whole in each process that loads it (also under
    ZeRO-3: `deepspeed_zero3_set_aside`); errors as one line naming `name`."""
    with teacher_errors(name, path), deepspeed_zero3_set_aside():
        return load_model(None, path)


def training_sentences(train: Dataset) -> list[str]:
    """Each sentence of the training pairs once, in order of appearance."""
    return list(dict.fromkeys([*train["sentence1"], *train["sentence2"]]))


def sentence_key(sentence: str) -> str:
    """A sentence without its case or spacing: "A  man is dancing." and "a man is dancing." are one sentence."""
    return " ".join(sentence.split()).casefold()


def pair_key(sentence_1: str, sentence_2: str) -> tuple[str, str]:
    """A pair without its order (nor the case or spacing of its sentences, `sentence_key`)."""
    key_1, key_2 = sentence_key(sentence_1), sentence_key(sentence_2)
    return (key_1, key_2) if key_1 <= key_2 else (key_2, key_1)


def silver_candidates(sentences: list[str], held_out: Iterable[str] = ()) -> list[int]:
    """The rows of `sentences` that silver pairs may take: the first of the sentences that are one (`sentence_key`),
    none that is one of `held_out` (the dev and test sentences)."""
    seen = {sentence_key(sentence) for sentence in held_out}
    rows = []
    for row, sentence in enumerate(sentences):
        key = sentence_key(sentence)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def neighbour_pairs(
    sentences: list[str],
    embeddings: np.ndarray,
    neighbors: int,
    exclude: set[tuple[str, str]],
    random_share: float = 0.0,
    seed: int = 42,
    block: int = 2048,
) -> list[tuple[str, str]]:
    """Each sentence with its `neighbors` nearest others by cosine, then `random_share` times as many random
    pairs; no pair twice (in either order), none of `exclude` (pair keys), no sentence with itself."""
    seen = set(exclude)
    pairs: list[tuple[str, str]] = []

    def add(i: int, j: int) -> None:
        key = pair_key(sentences[i], sentences[j])
        if i != j and key[0] != key[1] and key not in seen:
            seen.add(key)
            pairs.append((sentences[i], sentences[j]))

    take = min(neighbors + 1, len(sentences))
    vectors = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)) if neighbors else None
    for start in range(0, len(sentences) if neighbors else 0, block):
        similarity = vectors[start : start + block] @ vectors.T
        similarity[torch.arange(similarity.shape[0]), torch.arange(start, start + similarity.shape[0])] = -2.0
        nearest = similarity.topk(take, dim=1).indices.tolist()
        for offset, row in enumerate(nearest):
            for j in row[:neighbors]:
                add(start + offset, j)
    wanted = len(pairs) + round(random_share * len(pairs))
    generator = random.Random(seed)
    attempts = 0
    while len(pairs) < wanted and attempts < 20 * wanted:
        add(generator.randrange(len(sentences)), generator.randrange(len(sentences)))
        attempts += 1
    return pairs


def teacher_scores(teachers: list, pairs: list[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
    """The mean of the teachers' scores of `pairs`, on their (the student's) original range."""
    if not pairs:
        return np.empty(0, dtype=np.float64)
    return np.mean([teacher.predict(pairs, batch_size=batch_size, show_progress_bar=True) for teacher in teachers], 0)


def resolve_teachers(teacher_names: list[str]) -> list[str]:
    """Each teacher's local folder (a Hub id downloaded); one line naming a teacher that is not found."""
    paths = []
    for name in teacher_names:
        if looks_like_local_path(name) and not os.path.isdir(name):
            raise STSUserError(f"--teacher_name_or_path {name}: teacher folder not found")
        try:
            paths.append(local_model_folder(name))
        except STSUserError as error:
            raise STSUserError(f"--teacher_name_or_path {name}: {error}") from None
    return paths


def silver_labels(
    teacher_names: list[str],
    train: Dataset,
    score_range: tuple[float, float],
    neighbors: int = 3,
    random_share: float = 0.0,
    seed: int = 42,
    cache_dir: str | None = None,
    batch_size: int = 64,
    bf16: bool = False,
    held_out: list[str] | set[str] = (),
    use_cpu: bool = False,
) -> tuple[list[dict], dict]:
    """Teacher scores of the gold training pairs and of the silver pairs (rows `sentence1, sentence2, score,
    gold`), from the cache when the same teachers, training data and options labelled them before; and what was
    done (`cache_file`, `labelling_seconds`, `silver_pairs`, `reused`). `bf16`: the teachers embed and score under
    bf16 autocast (the run's own precision; scores stay float32), a cache of its own. `held_out`: the dev and test
    sentences, which no silver pair takes (`silver_candidates`). `use_cpu`: the teachers run on the CPU (the run's
    `--use_cpu`), also where there is a GPU (`teacher_device`)."""
    held_out = {sentence_key(sentence) for sentence in held_out}
    checked = teacher_configs(teacher_names, score_range)  # a bad teacher is refused, also where labels are cached
    teacher_paths = [path for path, _ in checked]
    options = {"format": SILVER_FORMAT, "neighbors": neighbors, "random_share": random_share}
    if random_share:  # the seed draws the random pairs only: without them, every seed labels the same pairs
        options["seed"] = seed
    if bf16:  # float32 labels keep the cache names they had before this option
        options["bf16"] = True
    teacher_keys = [folder_fingerprint(path) for path in teacher_paths]  # each reads the teacher's weights: once
    teachers_fingerprint = fingerprint(teacher_keys)
    options_key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
    name = f"silver-{teachers_fingerprint[:16]}-{data_fingerprint(train, held_out)[:16]}-{options_key[:8]}.jsonl"
    path = os.path.join(cache_dir or default_cache_dir(), name)
    if os.path.isfile(path):
        try:
            header, rows = read_silver_cache(path, len(train), score_range)
            logger.info(f"Silver labels read from the cache {path} ({header['silver_pairs']} silver pairs)")
            return rows, {**header, "cache_file": path, "reused": True}
        except (OSError, ValueError) as error:
            logger.warning(f"Labelling again: the cache file {path} cannot be read ({error})")

    start = time.perf_counter()
    teachers = [load_teacher(name, path) for name, path in zip(teacher_names, teacher_paths)]
    device = teacher_device(use_cpu)
    for teacher in teachers:
        teacher.to(device)
    sentences = training_sentences(train)
    for name, teacher in zip(teacher_names, teachers):  # named here, not as an index into the pairs it labels
        normalize = teacher.normalized_text()
        for sentence in sentences:
            refuse_dropped_text(sentence, normalize, f"--teacher_name_or_path {name}: the training data")
    gold_pairs = list(zip(train["sentence1"], train["sentence2"]))
    embeddings = None
    if neighbors:  # the first teacher's, cached: a siamese one embeds the same sentences for the similarity term
        first = teachers[0]
        embeddings, _ = cached_sentence_embeddings(
            teacher_paths[0], teacher_keys[0], sentences, lambda: first, cache_dir, batch_size, bf16, use_cpu
        )
    candidates = silver_candidates(sentences, held_out)
    silver = neighbour_pairs(  # float32 similarities, outside autocast
        [sentences[row] for row in candidates],
        None if embeddings is None else embeddings[candidates],
        neighbors,
        {pair_key(*pair) for pair in gold_pairs},
        random_share,
        seed,
    )
    try:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            scores = teacher_scores(teachers, gold_pairs + silver, batch_size)
    except NonFiniteScoresError as error:  # a teacher whose weights diverged
        raise STSUserError(
            f"--teacher_name_or_path {error.model_name}: the teacher scores pairs as {error.score}: it cannot teach"
        ) from None
    rows = [
        {"sentence1": a, "sentence2": b, "score": float(score), "gold": index < len(gold_pairs)}
        for index, ((a, b), score) in enumerate(zip(gold_pairs + silver, scores))
    ]
    header = {
        **options,
        "teachers": teacher_names,
        "silver_pairs": len(silver),
        "training_sentences": len(sentences),
        "sentences_left_out": len(sentences) - len(candidates),  # dev/test sentences, and a sentence's twins
        "labelling_seconds": round(time.perf_counter() - start, 2),
        "device": device,
    }
    write_json_lines(path, header, rows)
    logger.info(
        f"Labelled {len(gold_pairs)} gold and {len(silver)} silver pairs with {len(teachers)} teacher(s) in "
        f"{header['labelling_seconds']:.1f} s; cached in {path}"
    )
    for teacher in teachers:
        teacher.to("cpu")
    return rows, {**header, "cache_file": path, "reused": False}


def distilled_training_data(
    train: Dataset, rows: list[dict], score_range: tuple[float, float], teacher_score_weight: float = 0.0
) -> Dataset:
    """The gold pairs (scores mixed with the teacher's by `teacher_score_weight`) followed by the silver pairs
    with the teacher's scores, as scored pairs. Teacher scores are clipped to `score_range`, as gold scores are
    refused outside it: a siamese teacher scores pairs that point apart below its minimum, which a
    `binary_cross_entropy` student would chase without end."""
    low, high = score_range
    gold = [row for row in rows if row["gold"]]
    if len(gold) != len(train):
        raise STSUserError("the silver-label cache does not match the training data: delete it and label again")

    def clipped(row: dict) -> float:
        return min(max(row["score"], low), high)

    mixed = [
        (1.0 - teacher_score_weight) * score + teacher_score_weight * clipped(row)
        for score, row in zip(train["score"], gold)
    ]
    silver = [row for row in rows if not row["gold"]]
    gold_data = Dataset.from_dict({"sentence1": train["sentence1"], "sentence2": train["sentence2"], "score": mixed})
    if not silver:
        return gold_data
    silver_data = Dataset.from_dict(
        {
            "sentence1": [row["sentence1"] for row in silver],
            "sentence2": [row["sentence2"] for row in silver],
            "score": [clipped(row) for row in silver],
        }
    )
    return concatenate_datasets([gold_data, silver_data.cast(gold_data.features)])


def teacher_sentence_embeddings(
    teacher_names: list[str],
    sentences: list[str],
    score_range: tuple[float, float],
    cache_dir: str | None = None,
    batch_size: int = 64,
    bf16: bool = False,
    use_cpu: bool = False,
) -> tuple[np.ndarray, dict]:
    """The siamese teachers' embeddings of `sentences`, one row each: every teacher's L2-normalized embedding side by
    side, scaled by 1/sqrt(teachers), so that the dot product of two rows is the teachers' mean cosine. Each teacher's
    from the cache (`cached_sentence_embeddings`) when it embedded the same sentences before; and what was done
    (`teachers`, `cache_files`, `embedding_seconds`: the teachers' time to embed them, also when read from the cache,
    `reused`: all from the cache). `use_cpu`: as for `silver_labels`. One line when no teacher is siamese."""
    checked = teacher_configs(teacher_names, score_range)
    siamese = [(name, path) for name, (path, config) in zip(teacher_names, checked)
               if config.model_type == STSSiameseConfig.model_type]  # fmt: skip
    if not siamese:
        raise STSUserError(
            "--teacher_similarity_weight needs a siamese (bi-encoder) teacher among --teacher_name_or_path "
            f"{' '.join(teacher_names)}: the others score pairs and embed no sentences"
        )
    parts, done = [], []
    for name, path in siamese:
        embeddings, info = cached_sentence_embeddings(
            path,
            folder_fingerprint(path),
            sentences,
            lambda name=name, path=path: load_teacher(name, path),
            cache_dir,
            batch_size,
            bf16,
            use_cpu,
        )
        parts.append(embeddings)
        done.append(info)
    info = {
        "teachers": [name for name, _ in siamese],
        "cache_files": [item["cache_file"] for item in done],
        "embedding_seconds": round(sum(item["embedding_seconds"] for item in done), 2),
        "reused": all(item["reused"] for item in done),
    }
    return np.concatenate(parts, axis=1) / np.sqrt(len(parts)), info
