"""The errors the user fixes (bad input, a Hub that refuses, a full disk), each told in one line, and the checks of
the Python API's arguments."""

from __future__ import annotations

import numbers
import signal
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalTokenNotFoundError, OfflineModeIsEnabled

from .processes import process_rank


class STSUserError(ValueError):
    """An error for the user to fix, told in one line: bad input (the message names the file, row, column or
    argument at fault), a Hub that cannot be reached or refuses, a full disk.

    The commands (`sts-models ...`, `run_sts.py`) print it as one line instead of a traceback. A message that names
    an argument of the Python API where the commands have a flag of their own (`score_range` and `--score_min`)
    comes with the commands' wording, `command_line` (kept when the error is pickled: `BaseException` pickles the
    instance's attributes).
    """

    def __init__(self, *args, command_line: str | None = None):
        super().__init__(*args)
        self.command_line = command_line

    def command_line_message(self) -> str:
        """The message as the commands print it: `command_line` where the API's wording differs, else the same."""
        return self.command_line or str(self)


class UsageError(STSUserError):
    """A command line argparse would refuse (an unrecognized flag): exit status 2, as argparse's own errors."""

    exit_status = 2


class NonFiniteScoresError(STSUserError):
    """A model scored a pair as NaN or infinity: its weights are not finite (a run that diverged), so no score it
    gives is right. `index` is the pair's position in the input, for callers that name it in their own terms."""

    def __init__(self, model_name: str, index: int, score: float):
        super().__init__(
            f"{model_name} scored sentence_pairs[{index}] as {score}: its weights are not finite (a run that "
            "diverged?)"
        )
        self.model_name, self.index, self.score = model_name, index, score


class HubPushError(STSUserError, ConnectionError):
    """A push to the Hub failed: offline mode, no connection, or the Hub refused it (token, permissions, repo id).

    A `ConnectionError`, and an `STSUserError` so that `run_sts.py` prints it as one line too.
    """


# The Hub's HTTP errors derive from the HTTP library's own `HTTPError` (httpx's or httpx2's, by huggingface_hub
# version), which is also the base of the connection errors and timeouts that huggingface_hub lets through.
_HUB_REQUEST_ERRORS = (HfHubHTTPError.__bases__[0], LocalTokenNotFoundError)


@contextmanager
def hub_push_errors(repo_id: str) -> Iterator[None]:
    """Inside, a failed Hub request becomes a one-line `HubPushError` naming `repo_id`, not a traceback of the
    HTTP library."""
    try:
        yield
    except OfflineModeIsEnabled:
        raise HubPushError(
            f"cannot push to the Hub repo {repo_id}: offline mode is on (HF_HUB_OFFLINE=1). Unset HF_HUB_OFFLINE, "
            "and check the network connection and your token (`hf auth login` or HF_TOKEN)"
        ) from None
    except HFValidationError as error:  # a name the Hub takes for no repo (a space, ...)
        reason = " ".join(str(error).split())
        raise HubPushError(f"cannot push to the Hub repo {repo_id!r}: it is no valid repo id ({reason})") from None
    except _HUB_REQUEST_ERRORS as error:
        reason = " ".join(str(error).split()) or "no message"
        raise HubPushError(
            f"cannot push to the Hub repo {repo_id}: {type(error).__name__}: {reason}. Check the network connection "
            "and your token (`hf auth login` or HF_TOKEN)"
        ) from None


FROM_ENCODER = "build one on it with STSSiameseModel.from_encoder (or STSRegressionModel or STSCrossAttentionModel)"


def plain_encoder(name: str, remedy: str = FROM_ENCODER) -> STSUserError:
    """The refusal of a plain encoder (a checkpoint without an STS head, e.g. a sentence-transformers model on the
    Hub) where a saved STS model is needed, and what to do with it (`remedy`; by default, in the Python API)."""
    return STSUserError(f"{name} is a plain encoder, not a saved STS model: {remedy}")


def check_positive_int(name: str, value) -> int:
    """`value` when it is a positive integer (a batch or chunk size, a count); else `STSUserError` naming
    `name`. A size of 0 or less would otherwise give an empty result or memory that is never written."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise STSUserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_items(items, name: str, fits: Callable[[object], bool], each: str, whole: str, start: int = 0) -> list:
    """`items` as a list, when it is a list (or another iterable, not a string) of which each item `fits`; else
    `STSUserError` naming `name` and the first item that does not fit, by its index counted from `start` (the
    position of the first item in the whole input, for one chunk of a stream)."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise STSUserError(f"{name} must be {whole}, got {type(items).__name__} {items!r:.80}")
    refuse_unordered(items, name, whole)
    items = list(items)
    for index, item in enumerate(items, start=start):
        if not fits(item):
            raise STSUserError(f"{name}[{index}] must be {each}, got {item!r:.80}")
    return items


# Collections without an order of the caller's (a dict iterates its keys): refused where inputs are matched to results.
UNORDERED = (Mapping, set, frozenset)


def refuse_unordered(items, name: str, whole: str) -> None:
    """Refuse a dict (iterating it reads its keys) or a set (its order is not the caller's, so results could not be
    matched to their inputs) where `name` must be `whole`, an ordered collection."""
    if isinstance(items, Mapping):
        raise STSUserError(f"{name} must be {whole}, got {type(items).__name__} (its keys would be read): pass a list, "
                           "e.g. list(values.values())")  # fmt: skip
    if isinstance(items, (set, frozenset)):
        raise STSUserError(f"{name} must be {whole}, got {type(items).__name__}, whose order is not yours: the "
                           "results could not be matched to the inputs; pass a list")  # fmt: skip


def _is_pair(pair) -> bool:
    return isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(s, str) for s in pair)


def has_text(sentence: str) -> bool:
    """Whether a sentence holds any character but whitespace and control characters (NUL, ...): what the data
    files and the Python API refuse as an empty sentence, which would score as a sequence of special tokens."""
    return any(not character.isspace() and unicodedata.category(character)[0] != "C" for character in sentence)


def _refuse_empty(items: list, name: str, start: int, sentences, normalize: Callable[[str], str] | None) -> list:
    for index, item in enumerate(items, start=start):
        for sentence in sentences(item):
            if not has_text(sentence):
                raise STSUserError(f"{name}[{index}] holds an empty sentence (no text but whitespace or control "
                                   f"characters): {item!r:.80}")  # fmt: skip
            refuse_surrogates(sentence, f"{name}[{index}]")
            refuse_dropped_text(sentence, normalize, f"{name}[{index}]")
    return items


def refuse_surrogates(sentence: str, where: str) -> None:
    """Refuse, naming `where`, a sentence holding a lone surrogate (`"\\ud800"` in JSON, or bytes decoded with
    `surrogateescape`): it is not Unicode text, and the tokenizer fails on it with a traceback."""
    try:
        sentence.encode("utf-8")
    except UnicodeEncodeError as error:
        raise STSUserError(
            f"{where} holds a lone surrogate U+{ord(sentence[error.start]):04X} at character {error.start + 1}, which "
            f"is not Unicode text: {sentence!r:.80}"
        ) from None


def refuse_dropped_text(sentence: str, normalize: Callable[[str], str] | None, where: str) -> None:
    """Refuse, naming `where`, a sentence of which `normalize` (a tokenizer's normalizer) keeps no text: it would
    score as a sequence of special tokens."""
    if normalize is not None and not has_text(normalize(sentence)):
        raise STSUserError(
            f"{where} holds a sentence the tokenizer reduces to nothing (it drops every character of it, e.g. "
            f"accents or U+FFFD): {sentence!r:.80}"
        )


def check_sentence_pairs(sentence_pairs, start: int = 0, normalize: Callable[[str], str] | None = None) -> list:
    """`sentence_pairs` as a list, each checked to be two strings with text, also after `normalize` (a tokenizer's
    normalizer) where given (`STSUserError` naming the first that is not, by its index counted from `start`)."""
    whole = "a list of (sentence_1, sentence_2) pairs"
    pairs = _check_items(sentence_pairs, "sentence_pairs", _is_pair, "a pair of strings", whole, start)
    return _refuse_empty(pairs, "sentence_pairs", start, lambda pair: pair, normalize)


def check_sentences(sentences, start: int = 0, normalize: Callable[[str], str] | None = None) -> list[str]:
    """`sentences` as a list, each checked to be a string with text, also after `normalize` (a tokenizer's
    normalizer) where given (`STSUserError` naming the first that is not, by its index counted from `start`)."""
    whole = "a string or a list of strings"
    checked = _check_items(
        sentences, "sentences", lambda sentence: isinstance(sentence, str), "a string", whole, start
    )
    return _refuse_empty(checked, "sentences", start, lambda sentence: (sentence,), normalize)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by `run_cli`'s handler so that it unwinds as Ctrl-C does: what was being
    written is removed on the way out."""


def _raise_terminated(signum, frame):
    raise Terminated()


def run_cli(prog: str, main: Callable[[list[str]], object], argv: list[str]) -> int:
    """Run a command's `main(argv)`: bad input (`STSUserError`), a missing optional dependency (`ImportError`,
    whose message names the extra) or a file-system error (`OSError`: a missing or unreadable file, a full disk)
    becomes one line on stderr, `PROG: error: ...`, and exit status 1 instead of a traceback. SIGINT (Ctrl-C) and
    SIGTERM end it with one line and exit status 130 or 143, after what was being written is removed.

    In a multi-process run every process ends alike, and only the first process of each machine prints its line
    where the others would print the same: bad input and a missing dependency (every process reads the same
    arguments, files and model with the same packages) and the signals (the launcher passes them to every
    process). An `OSError` can be one process's own (its disk, a file only it writes): each process prints it, the
    others' lines starting with `[rank N]`."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    own = False  # an error of this process's own, which each process prints
    try:
        main(argv)
        return 0
    except KeyboardInterrupt as interrupt:
        name, status = ("SIGTERM", 143) if isinstance(interrupt, Terminated) else ("SIGINT", 130)
        detail = getattr(interrupt, "detail", None)
        message, error = f"stopped by {name}" + (f"; {detail}" if detail else ""), False
    except (STSUserError, ImportError, OSError) as exception:
        text = exception.command_line_message() if isinstance(exception, STSUserError) else str(exception)
        message, status, error = " ".join(text.split()), getattr(exception, "exit_status", 1), True
        own = isinstance(exception, OSError) and not isinstance(exception, STSUserError)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    rank, first_of_machine = process_rank()
    if first_of_machine or own:
        # printed once the error and its traceback are gone: the progress bars they held open have closed by then
        where = "" if first_of_machine else f"[rank {rank}] "
        print(f"{where}{prog}: {'error: ' if error else ''}{message}", file=sys.stderr)
    return status
