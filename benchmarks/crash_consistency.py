#!/usr/bin/env python
"""Crash consistency: `kill -9` a writer at many points of its writes, then load what it left the way a user would.

Four surfaces, each replacing an earlier ("old") artifact with a new one:

- `export`: `export_onnx(model_B, F, overwrite=True)` over an export of model A; loaded with
  `ORTSTSModel.from_pretrained(F)`, which scores fixed pairs;
- `index`: `EmbeddingIndex.save(F)` of other embeddings (more of them, another `n_probe`) over a saved index;
  loaded with `EmbeddingIndex.load(F)`, which searches fixed queries (ids and scores);
- `predict`: `predict.py MODEL_B pairs OUT --overwrite` (`sts_models.cli.predict.main`) over the output of model A;
  read back as rows (index, sentences, prediction);
- `run`: `run_sts.py ... --output_dir F --overwrite_output_dir` (`sts_models.cli.train.main`, 2 training steps and
  an evaluation, another seed) over an earlier run's F; loaded with `load_model(None, F)`, which scores fixed pairs,
  and `all_results.json`, which must be valid JSON and belong to the same run as the model.

After each kill the target is classified: `old` (the old artifact's scores, to 1e-6), `new` (the new one's), `refused`
(an `STSUserError` in one line) or `mixed` (anything else: other scores, another exception, a message of several
lines). Target: 0 mixed. A mixed point is recorded with what the folder held: each file, its size and whether its
bytes are those of the old artifact, of the new one, or of neither.

Process model: the parent imports everything once, writes the old artifact itself (which also loads every module
the write uses) and prepares the inputs of the new one. Each point `os.fork()`s a child that performs the new write,
says on a pipe that it returned, and `os._exit`s; the parent sends SIGKILL after a delay, `waitpid`s it, classifies
the target, then puts the old artifact back in place. While it forks (`fork_safe`): one thread in torch and faiss,
tqdm's write lock made a lock of each process (tqdm's own is a `multiprocessing` semaphore that every forked child
shares: a child killed while a progress bar held it left the parent waiting forever), and the parent's objects
frozen out of the children's garbage collection (`gc.freeze`: forks as fast in the kill loop as when timed).
Temporaries a killed writer left beside the target (or hidden inside the run's folder) stay there: the next write
has to clean them up, and the leftovers after a last uninterrupted write, which follows all the kills, are counted.

Calibration: three uninterrupted writes timed alone (T, their median: from the fork to the child's report that the
write returned), then one while the parent polls the area about every millisecond for the times the disk changed
(scaled to T): the write window starts at the first change or, for `run`, when the final save's stage folder appears
(the run reads, trains and checkpoints first; its final save, results and model card come after). Points: 10% over
[0, window start), 30% aimed at the times the disk changed (each moved at random by up to 2% of T, or half the range
of the timed writes if more), 60% over [window start, 1.25 T] one per equal slice at a random place in it (seeded).
A point records whether the write had returned before the kill and whether the disk (size, mtime, inode of each
entry) had changed since the child was forked: a kill before the writer returned, after it changed the disk, landed
mid-write.

    python benchmarks/crash_consistency.py                         # 200 points a surface -> docs/results/...
    python benchmarks/crash_consistency.py --points 20 --surfaces export,predict --results /tmp/crash.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import select
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common import REPO, RESULTS, machine, sha256_file, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SURFACES = ("export", "index", "predict", "run")
TOLERANCE = 1e-6
LEAD_SHARE = 0.1  # of the points, spread before the write window
AIMED_SHARE = 0.3  # of the points, aimed at the times the disk changed in the calibration
AIM_JITTER = 0.02  # of the write's time, either side of an aimed point, at least (or half the calibration's range)
OVERSHOOT = 1.25  # the spread points end at this many times the write's time
CALIBRATIONS = 3  # uninterrupted writes timed; the median counts
MIXED_KEPT = 10  # mixed points recorded in full, a surface
EMPTY = hashlib.sha256(b"").hexdigest()
REFUSED_KEPT = 2  # refused points recorded in full, the first and the last ones of each message
RESULT_KEYS_SKIPPED = ("runtime", "per_second")  # results that differ from run to run of the same seed

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
NOUNS = "man woman child dog cat horse bird people girl boy player chef band crowd car train".split()
VERBS = "plays eats reads rides watches holds cuts sings jumps runs sleeps walks swims drives opens".split()
THINGS = "guitar piano ball book apple bread bike street park river field table window road beach".split()
ADJECTIVES = "a the one two small big red young old black white happy".split()


# ---------------------------------------------------------------------------------------------------------- inputs


def sentence(rng: random.Random) -> str:
    return (
        f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} "
        f"{rng.choice(ADJECTIVES)} {rng.choice(THINGS)} ."
    )


def sentence_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(sentence(rng), sentence(rng)) for _ in range(count)]


def write_encoder(folder: Path, seed: int, hidden_size: int, layers: int) -> str:
    """A BERT encoder with random weights (`seed`) and a WordPiece vocab of the words `sentence` uses."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL_TOKENS + sorted({*NOUNS, *VERBS, *THINGS, *ADJECTIVES, "."})
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(vocab=str(folder / "vocab.txt"), model_max_length=128).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


def write_sts_folder(folder: Path, train: int, dev: int, seed: int) -> str:
    """`sts-train.csv` and `sts-dev.csv` (csv with a header: sentence1, sentence2, score) of random pairs, read into
    memory by the loader of an STS-B folder (no `datasets` cache is written)."""
    import csv

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in (("sts-train.csv", train), ("sts-dev.csv", dev)):
        with open(folder / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence1", "sentence2", "score"])
            for _ in range(count):
                writer.writerow([sentence(rng), sentence(rng), round(rng.uniform(0, 5), 2)])
    return str(folder)


@dataclass
class Bench:
    """What the surfaces share: a work folder, two tiny siamese models A and B (different weights, saved) and the
    pairs they score."""

    work: Path
    hidden_size: int = 32
    layers: int = 2
    pairs: list = field(default_factory=lambda: sentence_pairs(8, seed=1))

    def __post_init__(self):
        from sts_models.architectures import load_model

        self.work = Path(self.work)
        self.encoders, self.models = {}, {}
        for name, seed in (("A", 0), ("B", 1)):
            self.encoders[name] = write_encoder(self.work / f"encoder-{name}", seed, self.hidden_size, self.layers)
            folder = self.work / f"model-{name}"
            load_model("siamese", self.encoders[name]).save_pretrained(folder)
            self.models[name] = str(folder)


# ---------------------------------------------------------------------------------------------------- the surface


@dataclass
class Surface:
    """One writer of one artifact. `area` holds the target and nothing but what its writers leave beside it."""

    name: str
    area: Path
    target: Path
    write_old: Callable[[], None]  # in the parent, once: the old artifact (also loads what the write imports)
    write_new: Callable[[], None]  # in each forked child
    observe: Callable[[], object]  # load the target as a user would; raises when it cannot
    same: Callable[[object, object], bool]
    window_marker: str | None = None  # the write window starts when a path of the area ending so appears
    description: str = ""
    settings: dict = field(default_factory=dict)


def files_of(area: Path) -> dict[str, str]:
    """`{path relative to area: sha256}` of every file under `area` (a folder alone: "dir")."""
    found = {}
    for root, folders, files in os.walk(area):
        for name in folders:
            path = os.path.join(root, name)
            if not os.listdir(path):
                found[os.path.relpath(path, area) + "/"] = "dir"
        for name in files:
            path = os.path.join(root, name)
            try:
                found[os.path.relpath(path, area)] = sha256_file(path)
            except OSError:
                continue
    return found


def stats_of(area: Path) -> dict[str, tuple[int, int, int]]:
    """`{path: (size, mtime_ns, inode)}` under `area`: cheap enough to poll, and changed by any write (also one that
    writes the bytes a killed writer had left there)."""
    found = {}
    for root, folders, files in os.walk(area):
        for name in folders + files:
            path = os.path.join(root, name)
            try:
                stat = os.lstat(path)
            except OSError:
                continue
            found[os.path.relpath(path, area)] = (stat.st_size if name in files else -1, stat.st_mtime_ns, stat.st_ino)
    return found


def describe(area: Path, old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """What each file under `area` is: `old`, `new`, `old=new` (the bytes of both at that path), else the bytes of
    a file of either at another path (`new: out/model.safetensors`: a stage or temporary copy), else `neither (N
    bytes)`."""
    described = {}
    elsewhere = {
        digest: f"{side}: {path}" for side, files in (("old", old), ("new", new)) for path, digest in files.items()
    }
    for path, digest in sorted(files_of(area).items()):
        sides = [side for side, files in (("old", old), ("new", new)) if files.get(path) == digest]
        if sides:
            described[path] = "=".join(sides)
        elif digest in elsewhere and digest not in ("dir", EMPTY):
            described[path] = elsewhere[digest]
        else:
            full = area / path
            size = full.stat().st_size if full.is_file() else 0
            described[path] = f"neither ({size} bytes)"
    return described


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def restore(surface: Surface, saved: Path) -> None:
    """Put the old artifact (`saved`, a copy of it) back at the target. Hidden entries inside a target folder that
    the old artifact has not (a killed run's stage) stay, as the killed writer left them: the next write cleans them
    up."""
    target = surface.target
    if saved.is_dir():
        if target.exists() and not target.is_dir():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        keep = set(os.listdir(saved))
        for name in os.listdir(target):
            if name not in keep and not name.startswith("."):
                remove(target / name)
        for name in os.listdir(saved):
            remove(target / name)
            if (saved / name).is_dir():
                shutil.copytree(saved / name, target / name)
            else:
                shutil.copy2(saved / name, target / name)
    else:
        remove(target)
        shutil.copy2(saved, target)


# ------------------------------------------------------------------------------------------------ fork and kill


@dataclass
class Child:
    pid: int
    done_fd: int
    started: float


def spawn(write: Callable[[], None], log: Path) -> Child:
    """Fork a child that runs `write`, says on a pipe that it returned (`ok`) or what it raised, and exits
    (`os._exit`: none of the parent's cleanup)."""
    done_read, done_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(done_read)
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
            try:
                write()
            except BaseException as error:
                traceback.print_exc()
                os.write(done_write, " ".join(f"{type(error).__name__}: {error}".split())[:1000].encode())
            else:
                os.write(done_write, b"ok")
                status = 0
        finally:
            os._exit(status)
    os.close(done_write)
    return Child(pid, done_read, time.monotonic())


def report(child: Child, timeout: float = 0.0) -> tuple[str, str | None]:
    """`("returned", None)` when the child said that its write returned, `("failed", what it raised)`,
    `("gone", None)` when it ended without a word (killed), `("running", None)` when none of these happened within
    `timeout` seconds."""
    readable, _, _ = select.select([child.done_fd], [], [], timeout)
    if not readable:
        return "running", None
    said = os.read(child.done_fd, 2000)
    if said == b"ok":
        return "returned", None
    return ("failed", said.decode(errors="replace")) if said else ("gone", None)


def reap(child: Child) -> int:
    os.close(child.done_fd)
    _, status = os.waitpid(child.pid, 0)
    return status


def calibrate(surface: Surface, log: Path, poll: bool, timeout: float = 120.0) -> dict:
    """One uninterrupted write in a child: its seconds (from the fork to its report that the write returned) and,
    with `poll` (the area polled meanwhile, which slows the child down a little), when the area first changed,
    when `window_marker` appeared, and the events on disk."""
    before = stats_of(surface.area)
    child = spawn(surface.write_new, log)
    if not poll:
        state, said = report(child, timeout)
        seconds = time.monotonic() - child.started
        if state == "running":
            os.kill(child.pid, signal.SIGKILL)
        status = reap(child)
        if state != "returned" or status != 0:
            raise RuntimeError(f"{surface.name}: the uninterrupted write failed ({said or state}); see {log}")
        return {"seconds": seconds}
    events: list[tuple[float, str, str]] = []
    previous, first_change, marker_seen = before, None, None
    while True:
        state, said = report(child, 0.001)
        now = time.monotonic() - child.started
        current = stats_of(surface.area)
        if current != previous:
            first_change = first_change if first_change is not None else now
            for path in sorted(set(previous) | set(current)):
                if path not in previous:
                    kind = "+"
                elif path not in current:
                    kind = "-"
                elif previous[path] != current[path]:
                    kind = "~"
                else:
                    continue
                events.append((round(now, 4), kind, path))
                if marker_seen is None and surface.window_marker and path.endswith(surface.window_marker):
                    marker_seen = now
            previous = current
        if state != "running":
            seconds = now
            break
        if now > timeout:
            os.kill(child.pid, signal.SIGKILL)
            reap(child)
            raise RuntimeError(f"{surface.name}: the uninterrupted write took over {timeout} s")
    status = reap(child)
    if state != "returned" or status != 0:
        raise RuntimeError(f"{surface.name}: the uninterrupted write failed ({said or status}); see {log}")
    start = first_change if first_change is not None else 0.0
    if surface.window_marker:
        if marker_seen is None:
            raise RuntimeError(f"{surface.name}: {surface.window_marker} never appeared in {surface.area}")
        start = marker_seen
    return {"seconds": seconds, "window_start_s": min(start, seconds), "events": events}


def schedule(points: int, window_start: float, seconds: float, events: list[float], jitter: float, seed: int):
    """Kill delays, in seconds from the fork: `LEAD_SHARE` of the points over [0, window_start); `AIMED_SHARE` at the
    times the calibration saw the disk change (`events`, in the window), each moved by up to `jitter` seconds either
    way (one run is not timed like another); the others over [window_start, `OVERSHOOT` x seconds], one per equal
    slice at a random place in it (the last ones land after the write returned)."""
    rng = random.Random(seed)
    lead = round(points * LEAD_SHARE) if window_start > 0 else 0
    events = sorted({time for time in events if window_start <= time <= seconds})
    aimed = round(points * AIMED_SHARE) if events else 0
    spread = points - lead - aimed
    delays = [(i + rng.random()) / lead * window_start for i in range(lead)]
    for i in range(aimed):
        event = events[i * len(events) // aimed]
        delays.append(max(0.0, event + rng.uniform(-1, 1) * jitter))
    end = OVERSHOOT * seconds
    delays += [window_start + (i + rng.random()) / spread * (end - window_start) for i in range(spread)]
    return sorted(delays)


def classify(surface: Surface, old, new) -> tuple[str, str | None]:
    """`old`, `new`, `refused` (with its message) or `mixed` (with what was found)."""
    from sts_models.errors import STSUserError

    try:
        found = surface.observe()
    except STSUserError as error:
        message = str(error).strip()
        if "\n" in message:
            return "mixed", f"STSUserError of {message.count(chr(10)) + 1} lines: {message[:300]}"
        return "refused", message
    except Exception as error:  # noqa: BLE001 - anything but a one-line refusal is what this test looks for
        lines = "".join(traceback.format_exception_only(type(error), error)).strip()
        return "mixed", f"{type(error).__module__}.{type(error).__name__}: {' '.join(lines.split())[:300]}"
    if surface.same(found, old):
        return "old", None
    if surface.same(found, new):
        return "new", None
    return "mixed", f"loaded, but neither the old nor the new result: {str(found)[:300]}"


def generic(message: str, surface: Surface) -> str:
    """A refusal's message with the work folder and process ids taken out, to count alike ones together."""
    message = message.replace(str(surface.area), "AREA")
    return " ".join("PID" if word.isdigit() and len(word) > 3 else word for word in message.split(" "))


def tqdm_classes() -> list[type]:
    from tqdm import std

    found, todo = [], [std.tqdm]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


@contextmanager
def fork_safe():
    """What the forked children need of the parent, restored after: one thread in torch and faiss (a child must not
    depend on the parent's thread pools), and tqdm's write lock a lock of each process alone. tqdm's own is a
    `multiprocessing` lock, shared by every process forked from this one: a child killed while it held it (a
    progress bar of transformers' weight loading, of predict.py) would leave it held, and the parent and the next
    children would wait for it forever. Separate processes, which is what users kill, share no such lock."""
    import threading

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        import faiss
    except ImportError:
        faiss = None
    faiss_threads = faiss.omp_get_max_threads() if faiss else None
    if faiss:
        faiss.omp_set_num_threads(1)
    classes = [cls for cls in tqdm_classes() if cls.__name__ == "tqdm" or "_lock" in vars(cls)]
    locks = {cls: vars(cls).get("_lock") for cls in classes}
    for cls in classes:
        cls._lock = threading.RLock()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if faiss:
            faiss.omp_set_num_threads(faiss_threads)
        for cls, lock in locks.items():
            if lock is None:
                del cls._lock
            else:
                cls._lock = lock


def copy(source: Path, destination: Path) -> None:
    remove(destination)
    (shutil.copytree if source.is_dir() else shutil.copy2)(source, destination)


def crash(surface: Surface, points: int, seed: int = 0, say: Callable[[str], None] = print) -> dict:
    """Kill the new write of `surface` at `points` points, classify the target after each; the record."""
    log = surface.area.parent / f"{surface.name}-children.log"
    saved_old = surface.area.parent / f"{surface.name}-old"
    with fork_safe():
        surface.write_old()
        old = surface.observe()
        copy(surface.target, saved_old)
        old_files = files_of(surface.area)
        gc.collect()
        gc.freeze()  # the children's garbage collections leave the parent's objects alone: faster, steadier forks
        try:
            # calibration: uninterrupted writes, timed alone, then one with the area polled
            timed, news = [], []
            for _ in range(CALIBRATIONS):
                restore(surface, saved_old)
                stats_of(surface.area)  # as before each kill
                timed.append(calibrate(surface, log, poll=False)["seconds"])
                news.append(surface.observe())
            restore(surface, saved_old)
            stats_of(surface.area)
            polled = calibrate(surface, log, poll=True)
            news.append(surface.observe())
            new = news[-1]
            if not all(surface.same(found, new) for found in news):
                raise RuntimeError(f"{surface.name}: uninterrupted writes gave different results")
            if surface.same(old, new):
                raise RuntimeError(f"{surface.name}: the old and the new artifact give the same results")
            new_files = files_of(surface.area)
            # the polled write's times, scaled to the median of the writes timed alone
            seconds = sorted(timed)[len(timed) // 2]
            scale = seconds / polled["seconds"]
            window_start = polled["window_start_s"] * scale
            jitter = max(AIM_JITTER * seconds, (max(timed) - min(timed)) / 2) + 0.001
            events = [event[0] * scale for event in polled["events"]]
            delays = schedule(points, window_start, seconds, events, jitter, seed)

            counts = Counter({state: 0 for state in ("old", "new", "refused", "mixed")})
            refusals: Counter = Counter()
            mixed, records, failures = [], [], []
            refused: dict[str, list[dict]] = {}
            killed_before_return = mid_write = 0
            started = time.monotonic()
            for delay in delays:
                restore(surface, saved_old)
                before = stats_of(surface.area)
                child = spawn(surface.write_new, log)
                wait = delay - (time.monotonic() - child.started)
                if wait > 0:
                    time.sleep(wait)
                os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
                outcome, said = report(child)
                os.close(child.done_fd)
                finished = outcome == "returned"
                if outcome == "failed":  # the write raised before the kill: what a killed writer left made it fail
                    failures.append({"delay_s": round(delay, 4), "error": said})
                changed = stats_of(surface.area) != before
                killed_before_return += not finished
                mid_write += (not finished) and changed
                state, detail = classify(surface, old, new)
                counts[state] += 1
                if state == "refused":
                    message = generic(detail, surface)
                    refusals[message] += 1
                    # the first and the last REFUSED_KEPT of each message (the delays rise)
                    example = {"delay_s": round(delay, 4), "message": message, "on_disk": None}
                    kept = refused.setdefault(message, [])
                    if len(kept) == 2 * REFUSED_KEPT:
                        del kept[REFUSED_KEPT]
                    kept.append(example)
                    example["on_disk"] = describe(surface.area, old_files, new_files)
                if state == "mixed" and len(mixed) < MIXED_KEPT:
                    mixed.append(
                        {
                            "delay_s": round(delay, 4),
                            "write_returned": finished,
                            "found": detail,
                            "on_disk": describe(surface.area, old_files, new_files),
                        }
                    )
                records.append([round(delay, 4), finished, changed, state])
            kills_seconds = time.monotonic() - started

            # one last uninterrupted write over the old artifact and whatever the killed writers left beside it
            restore(surface, saved_old)
            child = spawn(surface.write_new, log)
            outcome, said = report(child, 600)
            if outcome != "returned" or reap(child) != 0:
                raise RuntimeError(f"{surface.name}: the last write failed ({said or outcome}); see {log}")
            last_state, last_detail = classify(surface, old, new)
            leftovers = sorted(set(files_of(surface.area)) - set(new_files))
        finally:
            gc.unfreeze()
    result = {
        "description": surface.description,
        "settings": surface.settings,
        "points": points,
        "counts": dict(counts),
        "mixed": counts["mixed"],
        "refusals": dict(refusals.most_common()),
        "kills_before_the_write_returned": killed_before_return,
        "kills_mid_write": mid_write,
        "writes_failed": len(failures),
        "write_failures": failures[:MIXED_KEPT],
        "write_seconds": round(seconds, 4),
        "window_start_s": round(window_start, 4),
        "aim_jitter_s": round(jitter, 4),
        "calibration": {
            "writes_s": [round(t, 4) for t in timed],
            "polled_write_s": round(polled["seconds"], 4),
            "polled_window_start_s": round(polled["window_start_s"], 4),
            "polled_events": polled["events"][:60],
        },
        "kill_loop_seconds": round(kills_seconds, 2),
        "last_write": last_state if last_detail is None else f"{last_state}: {last_detail}",
        "leftover_temporaries_after_last_write": len(leftovers),
        "leftovers": leftovers[:20],
        "mixed_examples": mixed,
        "refused_examples": [example for kept in refused.values() for example in kept],
        "points_detail": {"columns": ["delay_s", "write_returned", "disk_changed", "state"], "rows": records},
    }
    say(
        f"{surface.name}: {points} kills over [0, {OVERSHOOT * seconds:.3f}] s (write window from "
        f"{window_start:.3f} s) -> old {counts['old']}, new {counts['new']}, refused {counts['refused']}, mixed "
        f"{counts['mixed']}; {mid_write} mid-write, {points - killed_before_return} after the write returned, "
        f"{len(failures)} writes failed; last write {result['last_write']}, {len(leftovers)} leftover temporaries "
        f"({kills_seconds:.1f} s)"
    )
    return result


# -------------------------------------------------------------------------------------------------- the surfaces


def area_of(bench: Bench, name: str) -> Path:
    area = bench.work / name / "area"
    if area.exists():
        shutil.rmtree(area)
    area.mkdir(parents=True)
    return area


def close(first, second) -> bool:
    import numpy as np

    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    return first.shape == second.shape and bool(np.all(np.abs(first - second) <= TOLERANCE))


def export_surface(bench: Bench) -> Surface:
    import onnxruntime

    from sts_models.architectures import load_model
    from sts_models.backends.onnx import ORTSTSModel, export_onnx

    area = area_of(bench, "export")
    target = area / "onnx"
    model_a, model_b = load_model(None, bench.models["A"]), load_model(None, bench.models["B"])

    def observe():
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        return ORTSTSModel.from_pretrained(target, session_options=options).predict(bench.pairs)

    return Surface(
        name="export",
        area=area,
        target=target,
        write_old=lambda: export_onnx(model_a, target, overwrite=True),
        write_new=lambda: export_onnx(model_b, target, overwrite=True),
        observe=observe,
        same=close,
        description="export_onnx(model B, F, overwrite=True) over the export of model A (siamese, float32); "
        "ORTSTSModel.from_pretrained(F).predict(8 pairs)",
        settings={"arch": "siamese", "hidden_size": bench.hidden_size, "layers": bench.layers},
    )


def index_surface(bench: Bench, dimension: int = 384, sizes: tuple[int, int] = (8_000, 12_000)) -> Surface:
    """Skipped (ImportError with the reason) without faiss."""
    import numpy as np

    from sts_models.search_index import EmbeddingIndex, import_faiss

    import_faiss()
    area = area_of(bench, "index")
    target = area / "index"
    rng = np.random.default_rng(0)
    indexes = []
    for size, n_probe in zip(sizes, (4, 8)):
        index = EmbeddingIndex(dimension, precision="float32", n_lists=32, n_probe=n_probe, training_size=size)
        index.add(rng.standard_normal((size, dimension), dtype=np.float32))
        indexes.append(index)
    queries = rng.standard_normal((16, dimension), dtype=np.float32)

    def observe():
        hits = EmbeddingIndex.load(target).search(queries, top_k=5)
        return [[(hit["corpus_id"], hit["score"]) for hit in row] for row in hits]

    def same(first, second) -> bool:
        return [[i for i, _ in row] for row in first] == [[i for i, _ in row] for row in second] and close(
            [[s for _, s in row] for row in first], [[s for _, s in row] for row in second]
        )

    return Surface(
        name="index",
        area=area,
        target=target,
        write_old=lambda: indexes[0].save(target),
        write_new=lambda: indexes[1].save(target),
        observe=observe,
        same=same,
        description=f"EmbeddingIndex(float32, 32 lists).save(F) of {sizes[1]:,} random {dimension}-dim embeddings "
        f"(n_probe 8) over an index of {sizes[0]:,} others (n_probe 4); EmbeddingIndex.load(F).search(16 queries, "
        "top_k=5): ids and scores",
        settings={"dimension": dimension, "sizes": list(sizes), "precision": "float32", "n_lists": 32},
    )


def predict_surface(bench: Bench, pairs: int = 2_000, chunk_size: int = 250) -> Surface:
    import csv

    from sts_models.cli import predict

    area = area_of(bench, "predict")
    target = area / "scores.tsv"
    pairs_file = bench.work / "predict" / "pairs.jsonl"
    with open(pairs_file, "w", encoding="utf-8") as handle:
        for first, second in sentence_pairs(pairs, seed=2):
            handle.write(json.dumps({"sentence1": first, "sentence2": second}) + "\n")

    def command(model: str) -> list[str]:
        return [model, str(pairs_file), str(target), "--overwrite", "--no_progress_bar", "--chunk_size",
                str(chunk_size)]  # fmt: skip

    def observe():
        from sts_models.errors import STSUserError

        if not target.exists():
            raise STSUserError(f"{target} not found")
        with open(target, encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle, delimiter="\t"))

    def same(first, second) -> bool:
        if len(first) != len(second) or first[:1] != second[:1]:
            return False
        if [row[:-1] for row in first] != [row[:-1] for row in second]:
            return False
        try:
            return close([float(row[-1]) for row in first[1:]], [float(row[-1]) for row in second[1:]])
        except (ValueError, IndexError):
            return False

    return Surface(
        name="predict",
        area=area,
        target=target,
        write_old=lambda: predict.main(command(bench.models["A"])),
        write_new=lambda: predict.main(command(bench.models["B"])),
        observe=observe,
        same=same,
        description=f"predict.py MODEL_B pairs.jsonl OUT.tsv --overwrite --chunk_size {chunk_size} ({pairs:,} pairs, "
        "sts_models.cli.predict.main) over the output of model A; OUT.tsv read back as rows",
        settings={"pairs": pairs, "chunk_size": chunk_size},
    )


def run_surface(bench: Bench, train: int = 16, dev: int = 8) -> Surface:
    from sts_models.architectures import load_model
    from sts_models.artifacts import STAGE
    from sts_models.cli import train as run_sts

    area = area_of(bench, "run")
    target = area / "out"
    data = write_sts_folder(bench.work / "run" / "data", train, dev, seed=3)

    def argv(seed: int) -> list[str]:
        return [
            "--arch", "siamese", "--model_name_or_path", bench.encoders["A"], "--dataset_name", data,
            "--do_train", "--do_eval", "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
            "--learning_rate", "1e-2", "--seed", str(seed), "--output_dir", str(target), "--overwrite_output_dir",
            "--disable_tqdm", "true", "--report_to", "none", "--log_level", "warning",
        ]  # fmt: skip

    def observe():
        scores = load_model(None, str(target)).predict(bench.pairs)
        results = None
        if (target / "all_results.json").exists():
            results = json.loads((target / "all_results.json").read_text(encoding="utf-8"))  # invalid: mixed
        return scores, results

    def same(found, reference) -> bool:
        """The reference's scores; results absent or the reference's (a part of them: the run writes them in
        steps), leaving out the timings."""
        (scores, results), (reference_scores, reference_results) = found, reference
        if not close(scores, reference_scores):
            return False
        if results is None:
            return True
        kept = {key: value for key, value in results.items() if not any(k in key for k in RESULT_KEYS_SKIPPED)}
        return all(key in reference_results and reference_results[key] == value for key, value in kept.items())

    return Surface(
        name="run",
        area=area,
        target=target,
        write_old=lambda: run_sts.main(argv(seed=1)),
        write_new=lambda: run_sts.main(argv(seed=2)),
        observe=observe,
        same=same,
        window_marker=STAGE,
        description=f"run_sts.py (sts_models.cli.train.main) siamese, {train} training pairs, 2 steps, evaluation on "
        f"{dev}, --seed 2 --overwrite_output_dir over the output of --seed 1; load_model(None, F).predict(8 pairs) "
        "and all_results.json. Kills spread over the final save window: from the stage folder's appearance to the "
        "end of the run",
        settings={"arch": "siamese", "train_pairs": train, "dev_pairs": dev, "hidden_size": bench.hidden_size},
    )


BUILDERS = {"export": export_surface, "index": index_surface, "predict": predict_surface, "run": run_surface}


def crash_surface(name: str, bench: Bench, points: int, seed: int = 0, say: Callable[[str], None] = print) -> dict:
    return crash(BUILDERS[name](bench), points, seed=seed, say=say)


# ----------------------------------------------------------------------------------------------------------- main


def busy(loadavg: str | None) -> str | None:
    """Whether other work shared the CPUs when the benchmark started, from /proc/loadavg's 1-minute figure."""
    if not loadavg:
        return None
    load, cores = float(loadavg.split()[0]), os.cpu_count() or 1
    return f"{'busy' if load >= 0.5 else 'quiet'}: 1-minute load {load:.2f} on {cores} cores before the run"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=200, help="kills a surface (default 200)")
    parser.add_argument("--surfaces", default=",".join(SURFACES), help=f"comma-separated, of {','.join(SURFACES)}")
    parser.add_argument("--results", default=str(RESULTS / "crash_consistency.json"), help="the JSON to write")
    parser.add_argument("--seed", type=int, default=0, help="where in each slice of the window a kill lands")
    parser.add_argument("--hidden_size", type=int, default=32, help="width of the tiny encoders")
    parser.add_argument("--layers", type=int, default=2, help="layers of the tiny encoders")
    args = parser.parse_args(argv)
    surfaces = [name.strip() for name in args.surfaces.split(",") if name.strip()]
    unknown = [name for name in surfaces if name not in SURFACES]
    if unknown or args.points < 1:
        parser.error(f"--surfaces: choose from {','.join(SURFACES)}" if unknown else "--points must be at least 1")
    load_before = Path("/proc/loadavg").read_text().strip() if os.path.exists("/proc/loadavg") else None
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()  # the loads after each kill: hundreds of bars
    datasets.disable_progress_bars()
    report = {"surfaces": {}, "skipped": {}}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-consistency-") as work:
        bench = Bench(Path(work), hidden_size=args.hidden_size, layers=args.layers)
        for name in surfaces:
            try:
                report["surfaces"][name] = crash_surface(name, bench, args.points, seed=args.seed)
            except ImportError as error:  # faiss or onnxruntime not installed
                report["skipped"][name] = str(error)
                print(f"{name}: skipped: {error}")
    report.update(
        {
            "target": "0 mixed states: after each kill the target loads to the old artifact or the new one (scores "
            f"equal to {TOLERANCE:g}), or is refused in one line",
            "total_mixed": sum(result["mixed"] for result in report["surfaces"].values()),
            "seconds": round(time.monotonic() - started, 1),
            "machine": {
                **machine(),
                "loadavg_before": load_before,
                "loadavg_after": Path("/proc/loadavg").read_text().strip() if load_before else None,
                "busy": busy(load_before),
            },
            "command": "python " + shlex.join([os.path.relpath(__file__, REPO), *(argv or sys.argv[1:])]),
        }
    )
    write_results(args.results, report)
    print(f"total mixed states: {report['total_mixed']}; {report['seconds']} s; written to {args.results}")
    return report


if __name__ == "__main__":
    main()
