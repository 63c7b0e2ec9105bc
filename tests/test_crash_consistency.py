"""Crash consistency in CI: `benchmarks/crash_consistency.py` kills each writer (ONNX export, index save,
`predict.py`'s output, a run's final save) with SIGKILL at 20 points spread over its writes, and after each kill the
target loads to the old artifact or the new one, or is refused in one line: never a mix. The benchmark's 200-point
run is docs/results/crash_consistency.json."""

from __future__ import annotations

import json

import pytest

crash_consistency = pytest.importorskip("crash_consistency")  # benchmarks/ is on pytest's pythonpath

POINTS = 20


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return crash_consistency.Bench(tmp_path_factory.mktemp("crash"), hidden_size=32, layers=2)


@pytest.mark.parametrize("surface", crash_consistency.SURFACES)
def test_a_kill_at_any_point_leaves_the_old_or_the_new_artifact(bench, surface):
    if surface == "index":
        pytest.importorskip("faiss")
    if surface == "export":
        pytest.importorskip("onnxruntime")
    result = crash_consistency.crash_surface(surface, bench, POINTS, say=lambda line: None)
    counts, rows = result["counts"], result["points_detail"]["rows"]
    assert result["points"] == POINTS and sum(counts.values()) == POINTS and len(rows) == POINTS
    assert counts["mixed"] == 0, json.dumps(result["mixed_examples"], indent=1)[:3000]
    assert result["writes_failed"] == 0, result["write_failures"]  # what a killed writer left never fails the next
    # not vacuous: kills landed inside the write (the writer had changed the disk and not returned yet), some before
    # the new artifact was in place (the old one found, or a refusal); the check tells the new one from the old (the
    # calibration and the last write) and a mix from both (test_a_mixed_state_is_caught)
    assert result["kills_mid_write"] >= POINTS // 5, rows
    assert counts["old"] + counts["refused"] >= 1, counts
    assert all("\n" not in message for message in result["refusals"])
    # the last, uninterrupted write over the old artifact and all the killed writers left: the new one, nothing else
    assert result["last_write"] == "new"
    assert result["leftover_temporaries_after_last_write"] == 0, result["leftovers"]


def test_a_mixed_state_is_caught(tmp_path):
    """The check itself: a writer that replaces two files one after the other, in place, is caught mixing them."""
    area = tmp_path / "area"
    area.mkdir()
    target = area / "pair"

    def write(value: str) -> None:
        target.mkdir(exist_ok=True)
        for name in ("first", "second"):
            (target / name).write_text(value)
            if value == "new":
                crash_consistency.time.sleep(0.05)

    def observe():
        return [(target / name).read_text() for name in ("first", "second")]

    surface = crash_consistency.Surface(
        name="pair",
        area=area,
        target=target,
        write_old=lambda: write("old"),
        write_new=lambda: write("new"),
        observe=observe,
        same=lambda found, reference: found == reference,
    )
    result = crash_consistency.crash(surface, 10, say=lambda line: None)
    assert result["mixed"] >= 1 and result["counts"]["new"] >= 1, result["counts"]
    # what the folder held, file by file: the first file already new, the second still old
    assert all(example["found"].startswith("loaded, but neither") for example in result["mixed_examples"])
    assert {"pair/first": "new", "pair/second": "old"} in [example["on_disk"] for example in result["mixed_examples"]]
