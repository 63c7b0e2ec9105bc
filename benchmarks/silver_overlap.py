#!/usr/bin/env python
"""How many STS-B dev and test pairs and sentences the silver pairs of distillation take, with the sampler as it is
(dev and test sentences left out) and as it was before (cache format 1: every training sentence a candidate).

    python benchmarks/silver_overlap.py outputs/siamese-minilm

STS-B shares about 250 sentences between train and each of dev and test: a training sentence's nearest neighbours
(by the teacher's embeddings, `--neighbors` each, the recipes' 3 by default) can be such sentences, and two of them
can make a dev or test pair. Only the teacher's embeddings of the training sentences are needed (cached beside the
silver labels); nothing is labelled or trained. Writes `--results` (default docs/results/silver_overlap.json).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from common import RESULTS, STSB_DIR, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def overlap(silver: list[tuple[str, str]], split) -> dict[str, int]:
    """The pairs of `split` that are silver pairs, and the silver pairs that hold one of its sentences."""
    from sts_models.distillation import pair_key, sentence_key

    pairs = {pair_key(a, b) for a, b in zip(split["sentence1"], split["sentence2"])}
    sentences = {sentence_key(sentence) for sentence in [*split["sentence1"], *split["sentence2"]]}
    keys = [pair_key(*pair) for pair in silver]
    return {
        "pairs": len(pairs),
        "pairs_that_are_silver_pairs": len(pairs & set(keys)),
        "silver_pairs_with_one_of_its_sentences": sum(a in sentences or b in sentences for a, b in keys),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher", help="a trained STS model, whose embeddings choose the neighbours")
    parser.add_argument("--neighbors", type=int, default=3)
    parser.add_argument("--data", default=str(STSB_DIR), help="an STS-B folder (sts-train.csv, sts-dev.csv, ...)")
    parser.add_argument("--cache_dir", default=None, help="the teachers' embedding cache (default: the silver one)")
    parser.add_argument("--results", default=str(RESULTS / "silver_overlap.json"))
    args = parser.parse_args(argv)
    if args.neighbors < 1:
        parser.error(f"--neighbors must be 1 or more, got {args.neighbors}")
    for flag, folder in (("teacher", args.teacher), ("--data", args.data)):
        if not os.path.isdir(folder):
            parser.error(f"{flag}: folder not found: {folder}")
    if args.cache_dir is not None and os.path.exists(args.cache_dir) and not os.path.isdir(args.cache_dir):
        parser.error(f"--cache_dir {args.cache_dir} is a file, not a folder")

    from sts_models.architectures import load_model
    from sts_models.artifacts import folder_fingerprint
    from sts_models.cli.train import sentences_of
    from sts_models.data import load_sts_dataset
    from sts_models.distillation import neighbour_pairs, pair_key, silver_candidates, training_sentences
    from sts_models.teacher_embeddings import cached_sentence_embeddings

    data = load_sts_dataset(args.data)
    sentences = training_sentences(data["train"])
    embeddings, _ = cached_sentence_embeddings(
        args.teacher,
        folder_fingerprint(args.teacher),
        sentences,
        lambda: load_model(None, args.teacher),
        args.cache_dir,
    )
    gold = {pair_key(a, b) for a, b in zip(data["train"]["sentence1"], data["train"]["sentence2"])}
    held_out = [sentence for split in ("validation", "test") for sentence in sentences_of(data[split])]
    samplers = {"before (format 1)": list(range(len(sentences))), "now": silver_candidates(sentences, held_out)}
    report = {"teacher": args.teacher, "neighbors": args.neighbors, "training_sentences": len(sentences)}
    for name, rows in samplers.items():
        silver = neighbour_pairs([sentences[row] for row in rows], embeddings[rows], args.neighbors, gold)
        report[name] = {
            "candidate_sentences": len(rows),
            "silver_pairs": len(silver),
            "dev": overlap(silver, data["validation"]),
            "test": overlap(silver, data["test"]),
        }
    report["command"] = shlex.join(
        ["python", "benchmarks/silver_overlap.py", *(sys.argv[1:] if argv is None else argv)]
    )
    write_results(args.results, report)
    print(report)


if __name__ == "__main__":
    main()
