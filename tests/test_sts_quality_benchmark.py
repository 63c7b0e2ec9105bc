"""The quality benchmark's report: tables and comparisons rendered from result JSON files (no training)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from .conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "sts_quality.py"


@pytest.fixture(scope="module")
def benchmark():
    return load_script(SCRIPT, "sts_quality")


def result(system: str, test_spearman: float, sick: float = 0.78, command_extra: str = "") -> dict:
    return {
        "system": system, "kind": "bi-encoder", "seed": 42, "eval_pearson": 0.88, "eval_spearman": 0.885,
        "test_pearson": 0.86, "test_spearman": test_spearman, "sick_test_pearson": 0.8, "sick_test_spearman": sick,
        "train_seconds": 600.0, "train_samples_per_second": 38.3, "history": [],
        "notebook_examples": [0.1, 1.0, 2.2, 3.1, 3.9, 5.0],
        "command": f"python benchmarks/sts_quality.py train {system}{command_extra}",
    }  # fmt: skip


def render_report(benchmark, folder: Path, files: dict[str, dict]) -> str:
    """Write result JSON `files` (paths relative to `folder`) and render the report from them."""
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content))
    output = folder.parent / "results.md"
    benchmark.report(argparse.Namespace(results_dir=str(folder), output=str(output)))
    return output.read_text()


def test_report_renders_results_comparisons_and_recipes(benchmark, tmp_path):
    tried = result("siamese", 0.8706, command_extra=" --results x.json -- --loss cosent --learning_rate 5e-5")
    files = {
        "siamese.json": result("siamese", 0.8731, sick=0.779),
        "st-bi-encoder-cosent.json": result("st-bi-encoder-cosent", 0.8676),
        "untrained.json": result("untrained", 0.82),
        "ablations/siamese-cosent.json": tried,
        "ablations/siamese-angle.json": {
            **result("siamese", 0.8690, command_extra=" -- --loss angle"),
            "configs_commit": "ef0a5e6",
        },
    }
    text = render_report(benchmark, tmp_path / "results", files)
    assert "| `siamese` | bi-encoder | 88.50 | 86.00 | 87.31 | 77.90 | 10.0 min | 38.3 |" in text
    # 0.55 above the CoSENT anchor; SICK-R 77.90 below the untrained 78.00
    assert "| `siamese` | 87.31 | `st-bi-encoder-cosent` 86.76 | +0.55 |" in text
    assert "goal" not in text.lower()  # results for users: goals stay in the tracker
    assert "77.90 against 78.00 for the untrained model (below it)" in text
    # rows without a configs commit add their flags to the first configs
    assert "| `siamese` | 87acbac | `--loss cosent --learning_rate 5e-5` | 88.50 | 87.06 |" in text
    assert "| `siamese` | ef0a5e6 | `--loss angle` | 88.50 | 86.90 |" in text
    assert "| Spearman with intended | | | 1.00 | 1.00 | 1.00 |" in text


def test_the_rival_recipe_is_chosen_on_dev_not_on_test(benchmark, tmp_path):
    """The sentence-transformers recipe beside ours was the one with the best test score: test data chose it."""
    files = {
        "siamese.json": result("siamese", 0.8679),
        "st-bi-encoder.json": {**result("st-bi-encoder", 0.8556), "eval_spearman": 0.8967},
        "st-bi-encoder-cosent.json": {**result("st-bi-encoder-cosent", 0.8676), "eval_spearman": 0.8792},
    }
    text = render_report(benchmark, tmp_path / "results", files)
    assert "| `siamese` | 86.79 | `st-bi-encoder` 85.56 | +1.23 |" in text


def test_report_says_where_a_result_was_written_first_and_shows_a_recipes_note(benchmark, tmp_path):
    folder = tmp_path / "results"
    shipped = result("siamese", 0.8731, command_extra=" --results docs/results/ablations/siamese-tried.json")
    shipped["note"] = "rerun on the corrected sampler"
    kept = result("bert", 0.85, command_extra=" --results outputs/bert-heldout.json")
    noted = {**result("siamese", 0.8706, command_extra=" -- --loss cosent"), "report_note": "tests beside it"}
    files = {"siamese.json": shipped, "cross.json": result("cross", 0.86), "ablations/siamese-noted.json": noted}
    text = render_report(benchmark, folder, {**files, "bert.json": kept})
    # a result moved after it was run (a recipe tried, then shipped) says so beside its command; one in place does not
    assert (
        "--results docs/results/ablations/siamese-tried.json` (written as `docs/results/ablations/siamese-tried.json`"
        ", kept as `docs/results/siamese.json`: its `note` says why)" in text.replace(str(folder), "docs/results")
    )
    # a note is named only where the result has one
    assert "(written as `outputs/bert-heldout.json`, kept as `" in text and "bert.json`)\n" in text
    assert "- `cross`: `python benchmarks/sts_quality.py train cross`\n" in text
    assert "| `siamese` | 87acbac | `--loss cosent` (tests beside it) | 88.50 | 87.06 |" in text


def test_report_averages_seeds_and_compares_on_the_means(benchmark, tmp_path):
    files = {
        "siamese.json": result("siamese", 0.8706),
        "st-bi-encoder-cosent.json": result("st-bi-encoder-cosent", 0.8676),
        "untrained.json": result("untrained", 0.82, sick=0.7715),
    }
    for system, seed, score, sick in [("siamese", 43, 0.8716, 0.774), ("siamese", 44, 0.8696, 0.7779),
                                      ("st-bi-encoder-cosent", 43, 0.8606, 0.78), ("st-bi-encoder-cosent", 44, 0.8646, 0.78)]:  # fmt: skip
        files[f"seeds/{system}-{seed}.json"] = {**result(system, score, sick=sick), "seed": seed}
    files["siamese.json"]["sick_test_spearman"] = 0.7697  # below the untrained 77.15 alone, above it on the mean
    text = render_report(benchmark, tmp_path / "results", files)
    assert "| `siamese` | 42, 43, 44 | 88.50 ± 0.00 | 87.06 ± 0.10 | 77.39 ± 0.41 | 87.06 / 87.16 / 86.96 |" in text
    assert (
        "| `st-bi-encoder-cosent` | 42, 43, 44 | 88.50 ± 0.00 | 86.43 ± 0.35 | 78.00 ± 0.00 | 86.76 / 86.06 / 86.46 |"
        in text
    )
    assert "SICK-R transfer of `siamese`: 76.97 against 77.15 for the untrained model (below it)." in text
    assert (
        "SICK-R transfer of `siamese` on the mean: 77.39 against 77.15 for the untrained model (not below it)." in text
    )
    # seed 42 alone: +0.30; on the means: 87.06 - 86.43 = +0.63
    assert "| `siamese` | 87.06 | `st-bi-encoder-cosent` 86.76 | +0.30 |" in text
    assert "On the means: `siamese` 87.06, +0.63 against `st-bi-encoder-cosent` (86.43)." in text


def test_report_compares_the_students_of_minilm_only_with_their_kind(benchmark, tmp_path):
    files = {
        "siamese-distilled.json": result("siamese-distilled", 0.8675),
        "siamese-mpnet.json": result("siamese-mpnet", 0.8854),
        "cross-distilled.json": result("cross-distilled", 0.88),
        "st-bi-encoder-cosent.json": result("st-bi-encoder-cosent", 0.8676),
    }
    for seed, score in [(43, 0.8745), (44, 0.8725)]:
        files[f"seeds/siamese-distilled-{seed}.json"] = {**result("siamese-distilled", score), "seed": seed}
        files[f"seeds/st-bi-encoder-cosent-{seed}.json"] = {
            **result("st-bi-encoder-cosent", score - 0.01),
            "seed": seed,
        }
    text = render_report(benchmark, tmp_path / "results", files)
    assert "| `siamese-distilled` | 42, 43, 44 | 88.50 ± 0.00 | 87.15 ± 0.36 |" in text
    assert "| `siamese-distilled` | 86.75 | `st-bi-encoder-cosent` 86.76 | -0.01 |" in text
    # 87.15 against (86.76 + 86.45 + 86.25) / 3 = 86.49 (+0.66 unrounded)
    assert "On the means: `siamese-distilled` 87.15, +0.66 against `st-bi-encoder-cosent` (86.49)." in text
    assert "| `siamese-mpnet` | 88.54 | `st-bi-encoder" not in text  # another base: no anchor trained on it here
    assert "| `cross-distilled` | 88.00 |" not in text  # no cross-encoder anchor among the results


def test_report_gives_each_earlier_recipe_its_own_seeds_row(benchmark, tmp_path):
    files = {"siamese.json": result("siamese", 0.87)}
    for seed, score, commit in [(43, 0.86, "aaa1111"), (44, 0.862, "aaa1111"), (45, 0.85, "bbb2222"),
                                (46, 0.854, "bbb2222"), (47, 0.84, "ccc3333")]:  # fmt: skip
        files[f"seeds/siamese-{seed}.json"] = {**result("siamese", score), "seed": seed, "configs_commit": commit}
    text = render_report(benchmark, tmp_path / "results", files)
    earlier = "| `siamese`, not the shipped recipe (configs at {}; the commands in its JSON files) | {} |"
    assert earlier.format("aaa1111", "43, 44") in text and "| 86.00 / 86.20 |" in text
    assert earlier.format("bbb2222", "45, 46") in text and "| 85.00 / 85.40 |" in text
    assert "ccc3333" not in text  # one seed of its recipe: no mean
    assert "| `siamese` | 42," not in text  # the main result has no seed of its own recipe to pool with


def test_a_recipe_is_its_run_file_at_its_configs_commit_with_the_flags_over_it(benchmark, tmp_path, capsys):
    import subprocess

    def commit(text: str) -> str:
        (tmp_path / "configs" / "distill").mkdir(parents=True, exist_ok=True)
        (tmp_path / "configs" / "distill" / "siamese.yaml").write_text(text)
        git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "configs"], check=True)
        return subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    first = commit(
        "arch: siamese\nteacher_name_or_path: [outputs/teacher]\nnum_train_epochs: 3  # three\nsilver_neighbors: 3\nseed: 42\noutput_dir: a\n"
    )
    later = commit(
        "arch: siamese\nteacher_name_or_path: [outputs/teacher]\nnum_train_epochs: 6  # six\nsilver_neighbors: 1\nseed: 42\noutput_dir: a\n"
    )

    def run(commit: str, seed: int, flags: str) -> dict:
        command = (f"python benchmarks/sts_quality.py train siamese --config configs/distill/siamese.yaml --seed {seed} "
                   f"--output_dir outputs/s{seed} --{flags}")  # fmt: skip
        return {"system": "siamese-distilled", "arch": "siamese", "configs_commit": commit, "command": command}

    # flags run first, then written into the configs: one recipe, whatever the seed and output folder
    chosen = benchmark.recipe(run(first, 42, " --silver_neighbors 1 --num_train_epochs=6"), repo=tmp_path)
    assert chosen == benchmark.recipe(run(later, 43, ""), repo=tmp_path)
    assert chosen != benchmark.recipe(run(first, 43, ""), repo=tmp_path)  # the configs as they were then
    assert chosen != benchmark.recipe(run(later, 43, " --num_train_epochs 4"), repo=tmp_path)
    # flags without a value, with several, or numbers written otherwise: read as the run file would hold them
    flagged = benchmark.recipe(
        run(later, 43, " --bf16 --teacher_name_or_path a b --learning_rate 5e-5"), repo=tmp_path
    )
    assert '"bf16": true' in flagged and '"teacher_name_or_path": ["a", "b"]' in flagged
    assert '"learning_rate": 5e-05' in flagged
    # values as run_sts.py parses them: a valueless flag and `true` are one recipe, and so are 5e-5 and 5.0e-5
    assert flagged == benchmark.recipe(
        run(later, 44, " --bf16 true --teacher_name_or_path a b --learning_rate 5.0e-5"), repo=tmp_path
    )
    # a run file or flag this version no longer takes: the commit stands for the recipe, and nothing is printed
    gone = commit("arch: siamese\nan_option_since_removed: 1\n")
    assert benchmark.recipe(run(gone, 43, ""), repo=tmp_path) == gone
    assert benchmark.recipe(run(later, 43, " --num_train_epochs six"), repo=tmp_path) == later
    assert capsys.readouterr().err == ""
    # an uncommitted run file, or no commit at all: the commit stands for the recipe
    assert benchmark.recipe(run(f"{later}+dirty", 43, ""), repo=tmp_path) == f"{later}+dirty"
    assert benchmark.recipe({"system": "siamese", "command": "python benchmarks/sts_quality.py train siamese"}) == ""


def test_report_scores_rank_averaged_test_predictions(benchmark, tmp_path):
    gold = benchmark.stsb_splits(None, None)["test"]["score"][:50]
    noisy = [score + (1.5 if index % 5 == 0 else 0.0) for index, score in enumerate(gold)]
    files = {
        "siamese.json": {**result("siamese", 0.8), "test_predictions": noisy},
        "cross.json": {**result("cross", 0.9), "test_predictions": gold},
    }
    text = render_report(benchmark, tmp_path / "results", files)
    row = next(line for line in text.splitlines() if line.startswith("| `siamese` + `cross` |"))
    assert row.endswith("| `cross` 90.00 |")
    score = float(row.split("|")[2])
    noisy_alone = 100 * benchmark.correlations(noisy, gold)["spearman"]
    assert noisy_alone < score < 100.0  # the exact member pulls the average above the noisy one


def test_extra_flags_after_double_dash_reach_run_sts(benchmark, monkeypatch):
    seen = {}
    monkeypatch.setattr(benchmark, "train", lambda args: seen.update(vars(args)))
    monkeypatch.setattr("sys.argv", ["sts_quality.py", "train", "bert", "--seed", "43", "--", "--loss", "cosent"])
    benchmark.main()
    assert seen["system"] == "bert" and seen["seed"] == 43 and seen["extra"] == ["--loss", "cosent"]


def test_report_keeps_the_hand_written_notes_and_skips_other_benchmarks(benchmark, tmp_path):
    files = {"siamese.json": result("siamese", 0.87), "onnx.json": {"quantize": "int8", "speedup": 2.0}}
    first = render_report(benchmark, tmp_path / "results", files)
    notes = f"{benchmark.NOTES_MARKER}\n\n## Notes\n\nThe siamese recipe: `siamese.json`."
    (tmp_path / "results.md").write_text(f"{first}\n{notes}\n")
    second = render_report(benchmark, tmp_path / "results", {"siamese.json": result("siamese", 0.88)})
    assert "| `siamese` | bi-encoder | 88.50 | 86.00 | 88.00 |" in second  # the tables are rendered again
    assert second.endswith(f"report`.\n\n{notes}\n") and second.count(benchmark.NOTES_MARKER) == 1


def run_sts_command(benchmark, monkeypatch, output_dir: Path, *flags: str) -> list[str]:
    """The run_sts.py command that `train` with `flags` starts (stopped there)."""
    commands, run = [], benchmark.subprocess.run

    def stop(command, **kwargs):
        if not any(str(part).endswith("run_sts.py") for part in command):
            return run(command, **kwargs)  # e.g. the configs' commit, from git
        commands.append(command)
        raise InterruptedError

    monkeypatch.setattr(benchmark.subprocess, "run", stop)
    monkeypatch.setattr("sys.argv", ["sts_quality.py", "train", "cross", "--output_dir", str(output_dir), *flags])
    with pytest.raises(InterruptedError):
        benchmark.main()
    return commands[0]


def test_resume_continues_from_the_last_whole_checkpoint(benchmark, monkeypatch, tmp_path):
    assert "--overwrite_output_dir" in run_sts_command(benchmark, monkeypatch, tmp_path)  # a new run
    for step, whole in ((360, True), (720, True), (1080, False)):  # checkpoint-1080: its run stopped while saving
        (tmp_path / f"checkpoint-{step}").mkdir()
        if whole:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    command = run_sts_command(benchmark, monkeypatch, tmp_path, "--resume")
    assert "--overwrite_output_dir" not in command  # which would delete the checkpoint
    assert command[command.index("--resume_from_checkpoint") + 1] == str(tmp_path / "checkpoint-720")
    assert benchmark.resumed_from(command) == "checkpoint-720"
    # a checkpoint among the extra flags (after `--`) is the one run_sts.py resumes from, and the one recorded
    extra = str(tmp_path / "checkpoint-360")
    command = run_sts_command(benchmark, monkeypatch, tmp_path, "--resume", "--", "--resume_from_checkpoint", extra)
    assert benchmark.resumed_from(command) == "checkpoint-360"


def test_resume_without_a_checkpoint_or_of_an_anchor_is_refused(benchmark, monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match=f"no checkpoint-N folder saved whole in {tmp_path}"):
        run_sts_command(benchmark, monkeypatch, tmp_path, "--resume")
    monkeypatch.setattr("sys.argv", ["sts_quality.py", "train", "st-cross-encoder", "--resume"])
    with pytest.raises(SystemExit, match="--resume continues a run of run_sts.py"):
        benchmark.main()


def test_a_resumed_run_shows_no_train_time(benchmark, tmp_path):
    resumed = {**result("siamese", 0.88), "resumed_from": "checkpoint-1800"}
    text = render_report(benchmark, tmp_path / "results", {"siamese.json": resumed})
    assert "| - (resumed from checkpoint-1800) |" in text and "10.0 min" not in text


def test_a_result_records_how_busy_the_machine_was_and_the_precision(benchmark, monkeypatch, tmp_path):
    """train_seconds are shown as train times: a result records the machine's load before and after the run, the
    threads, and the precision `--bf16 auto` chose (it recorded none of them)."""
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "sts_model_card.json").write_text(json.dumps({"hyperparameters": {"precision": "bf16 (mixed)"}}))
    # (the card is read for our systems only: an anchor run in a folder one of ours used records none)
    monkeypatch.setattr(benchmark, "train_ours", lambda system, seed, folder, args: {"test_spearman": 0.8})
    monkeypatch.setattr("sys.argv", ["sts_quality.py", "train", "siamese"])
    args = argparse.Namespace(resume=False, system="siamese", output_dir=str(output_dir), name=None, seed=42,
                              config=None, extra=[], results=str(tmp_path / "r.json"))  # fmt: skip
    benchmark.train(args)
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result["machine"]) == {"before", "after", "torch_threads"}
    assert "load_average_1min" in result["machine"]["before"] and result["precision"] == "bf16"
    monkeypatch.setattr(benchmark, "train_anchor", lambda system, seed, folder, args: {"test_spearman": 0.8})
    benchmark.train(argparse.Namespace(**{**vars(args), "system": "st-bi-encoder"}))
    assert "precision" not in json.loads((tmp_path / "r.json").read_text())
