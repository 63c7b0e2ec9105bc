"""Files and folders written whole or not at all, what may be written over, and fingerprints of models.

An export is written into a temporary sibling of its folder (same file system) and renamed into place at the end:
after a crash, a full disk or a signal, the folder holds the earlier export or the new one, never a mix of the two,
and the temporary sibling is removed (or, after a kill -9, removed by the next export into that folder).
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import math
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import STSUserError

PARTIAL = ".partial-"  # `.NAME.partial-HOST-PID`: a folder or file being written by process PID on HOST (`sibling`)
RETIRED = ".retired-"  # `.NAME.retired-HOST-PID`: the earlier folder, between the two renames


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer() -> str:
    """This machine, as writers' names tell it apart: its host name, and the PID namespace where the system has
    them (containers that share a host name each number their processes from 1)."""
    try:
        namespace = f"_{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}{namespace}"


def sibling(path: str | os.PathLike, marker: str) -> str:
    """`.NAME<marker>HOST-PID` beside `path`: this process's own temporary name for it, also among processes of
    other machines (or containers) sharing the folder."""
    parent, name = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{name}{marker}{_writer()}-{os.getpid()}")


def remove_stale_siblings(path: str | os.PathLike) -> None:
    """Remove what writers of `path` (a folder or a file) on this machine that are no longer running left beside it
    (also under the names of earlier versions, `.NAME.partial-PID`). An earlier folder that a writer killed between
    its two renames left retired, with nothing at `path`, is put back instead. Those of other machines or containers
    are left alone: whether they still run cannot be told from here."""
    parent, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(parent):
        return
    this = _writer()
    for entry in os.listdir(parent):
        for marker in (PARTIAL, RETIRED):
            prefix = f".{name}{marker}"
            writer, _, pid = entry[len(prefix) :].rpartition("-")
            mine = writer in ("", this)
            if entry.startswith(prefix) and mine and pid.isdigit() and not _pid_alive(int(pid)):
                stale = os.path.join(parent, entry)
                if marker == RETIRED and not os.path.lexists(path):
                    os.rename(stale, path)  # the earlier folder back in its place
                elif os.path.isdir(stale) and not os.path.islink(stale):
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    try:
                        os.remove(stale)
                    except FileNotFoundError:
                        pass


def check_export_folder(path: str, marker: str, overwrite: bool, source: str | None = None) -> None:
    """Refuse, in one line, an export folder that would lose or mix files: the model's own folder, a folder that
    holds anything but an earlier export (`marker` is the file every export writes), and an earlier export unless
    `overwrite`. What dead writers left beside it is cleared up first (`remove_stale_siblings`)."""
    remove_stale_siblings(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise STSUserError(f"{path} is a file, not a folder to export into")
    refuse_working_folder(path)
    if source and os.path.isdir(source) and os.path.isdir(path) and os.path.samefile(source, path):
        raise STSUserError(f"{path} is the model's own folder: export into another folder")
    entries = sorted(os.listdir(path)) if os.path.isdir(path) else []
    if not entries:
        return
    if marker not in entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise STSUserError(
            f"{path} is not empty ({shown}) and holds no earlier export (no {marker}): export into a new folder"
        )
    if not overwrite:
        raise STSUserError(f"{path} holds an earlier export: pass --overwrite (overwrite=True) to replace it")


@contextmanager
def named_for(path: str, partial: str) -> Iterator[None]:
    """A file-system error on `partial`, the copy of `path` being written (or on a file in it), or on no file (a full
    disk's), names what it was writing under its final name, `path`: the partial name means nothing to the user. The
    error keeps its kind (`PermissionError`, ...), `errno` and `strerror`."""
    try:
        yield
    except OSError as error:
        name = None if error.filename is None else os.fspath(error.filename)
        if error.errno is None or (name is not None and not name.startswith(partial)):
            raise
        named = path + name[len(partial) :] if name else path
        raise OSError(error.errno, error.strerror, named) from error


def refuse_working_folder(path: str) -> None:
    """Refuse, in one line, to replace the folder the process works in (or one that holds it): the earlier folder
    is moved aside and deleted, which would leave the process, and the shell it was started from, in a deleted
    folder."""
    here, target = os.path.realpath(os.getcwd()), os.path.realpath(path)
    if os.path.isdir(target) and (here == target or here.startswith(target.rstrip(os.sep) + os.sep)):
        raise STSUserError(
            f"{path} is the current folder or holds it, and writing it replaces the whole folder: write into "
            "another folder"
        )


# What file systems that cannot sync (a folder on SMB, FUSE mounts such as s3fs or gcsfuse) answer: the flush is
# skipped there, as PostgreSQL skips it, rather than every save failing
NO_SYNC = {errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EPERM, errno.EISDIR}


def _fsync(path: str, directory: bool = False) -> None:
    """Flush `path` to the disk, best effort where the file system cannot (`NO_SYNC`) or for a folder on Windows."""
    if directory and os.name != "posix":
        return  # a folder cannot be opened to sync it on Windows
    try:
        descriptor = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        if error.errno not in NO_SYNC:
            raise


def on_disk(path: str) -> None:
    """Flush `path` (a file, or a folder with everything in it) to the disk, before a rename puts it in place: after a
    power loss the rename is then never found pointing at empty or short files."""
    if not os.path.isdir(path):
        return _fsync(path)
    for root, _, files in os.walk(path):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                _fsync(os.path.join(root, name))
        _fsync(root, directory=True)


@contextmanager
def written_whole(path: str) -> Iterator[str]:
    """A new folder to write, which replaces `path` when the block ends without an error and is removed when it
    fails (also on KeyboardInterrupt and SystemExit). The current folder, or one holding it, is refused."""
    refuse_working_folder(path)
    path = os.path.realpath(path)  # a symlink's folder is the one replaced, and the link stays
    os.makedirs(os.path.dirname(path), exist_ok=True)
    remove_stale_siblings(path)
    partial = sibling(path, PARTIAL)
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with named_for(path, partial):
            os.makedirs(partial)
            yield partial
        on_disk(partial)
        retired = sibling(path, RETIRED)
        if os.path.lexists(path):
            os.rename(path, retired)
            try:
                os.rename(partial, path)
            except BaseException:
                os.rename(retired, path)  # the earlier folder back in its place
                raise
        else:
            os.rename(partial, path)
        shutil.rmtree(retired, ignore_errors=True)
        _fsync(os.path.dirname(path), directory=True)  # the renames themselves
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@contextmanager
def partial_file(path: str | os.PathLike) -> Iterator[str]:
    """The name of a new file to write beside `path` (`sibling`: each process its own, on the same file system),
    renamed to `path` when the block ends without an error (replacing an earlier file in one step) and deleted when it
    fails. What writers of `path` that are no longer running left beside it is removed first. A symlink's target is
    the file replaced, and the link stays."""
    path = os.path.realpath(path)
    remove_stale_siblings(path)
    partial = sibling(path, PARTIAL)
    try:
        with named_for(str(path), partial):
            yield partial
        on_disk(partial)
        os.replace(partial, path)
        _fsync(os.path.dirname(path), directory=True)
    finally:
        if os.path.lexists(partial):
            os.remove(partial)


@contextmanager
def file_written_whole(path: str, newline: str | None = None) -> Iterator:
    """A text handle on a `partial_file` of `path`: `path` is replaced when the block ends without an error, and left
    as it was when it fails."""
    with partial_file(path) as partial, open(partial, "w", encoding="utf-8", newline=newline) as handle:
        yield handle


def json_safe(value):
    """`value` with every NaN or infinite float replaced by None: what `json.dumps` writes is then valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_json(path: str, value, indent: int | None = 4) -> None:
    """Write `value` to `path` as valid JSON (no NaN: `json_safe`), whole or not at all (`file_written_whole`)."""
    with file_written_whole(path) as handle:
        handle.write(json.dumps(json_safe(value), indent=indent, sort_keys=True, allow_nan=False) + "\n")


STAGE = ".final.partial"  # inside a run's output folder: its final save, before it is moved into place
# The names of a saved model's weight files as transformers writes them, whole or sharded, of any variant
# (`save_pretrained(variant="fp16")`: `model.fp16.safetensors`, `model.safetensors.index.fp16.json`); the .bin ones
# are never loaded (safetensors only). Group `variant`: the variant, if any.
WEIGHT_FILE = re.compile(
    r"(?:model|pytorch_model)(?:\.(?P<variant>[^.]+?))?(?:-\d{5}-of-\d{5})?\.(?:safetensors|bin)"
    r"|(?:model\.safetensors|pytorch_model\.bin)\.index(?:\.(?P<index_variant>[^.]+))?\.json"
)


def weights_variant(name: str) -> str | None:
    """The variant of a weight file of `WEIGHT_FILE` ("" for none), or None for a file that is no weight file."""
    match = WEIGHT_FILE.fullmatch(name)
    return None if match is None else match["variant"] or match["index_variant"] or ""


@contextmanager
def staged_into(folder: str, last: str = "config.json") -> Iterator[str]:
    """A folder to save a model into, whose files then replace those of `folder` one rename at a time, `last`
    (the file loaders read first) after every other, and the earlier `last` removed before any: after a crash
    `folder` holds the earlier model, or the new one whole, or no `last` (which loaders refuse in one line). The
    earlier model's weight files of the variants the new save writes, and that it does not replace, go too (sharded
    over whole weights, the whole file would be loaded first). What a killed save left is removed by the next."""
    stage = os.path.join(folder, STAGE)
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    try:
        yield stage
        on_disk(stage)
        names = sorted(os.listdir(stage), key=lambda name: name == last)
        if last in names:
            if os.path.lexists(os.path.join(folder, last)):
                os.remove(os.path.join(folder, last))
            variants = {weights_variant(name) for name in names} - {None}
            for name in os.listdir(folder):
                if name not in names and weights_variant(name) in variants:
                    os.remove(os.path.join(folder, name))
        for name in names:
            target = os.path.join(folder, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            os.replace(os.path.join(stage, name), target)
        _fsync(folder, directory=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# The files of a saved model that decide what it computes: its config, weights and tokenizer (`folder_fingerprint`).
MODEL_DEFINITION_FILES = ("config.json", "*.safetensors", "*.bin", "tokenizer*.json", "special_tokens_map.json",
                          "added_tokens.json", "vocab.*", "merges.txt", "*.model")  # fmt: skip


def folder_fingerprint(folder: str) -> str:
    """sha256 over a saved model's config, weight and tokenizer files (`MODEL_DEFINITION_FILES`: names and bytes):
    the same files, the same fingerprint."""
    digest = hashlib.sha256()
    names = sorted(
        name
        for name in os.listdir(folder)
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in MODEL_DEFINITION_FILES)
    )
    for name in names:
        digest.update(name.encode())
        with open(os.path.join(folder, name), "rb") as handle:
            while block := handle.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()


CHECKSUM_BLOCK = 1 << 24  # bytes read at a time by `file_checksum`: memory stays flat for a file of any size
# Config fields that saving or loading a model sets (where it came from, its class, its code, the dtype it was
# loaded in), not what it computes: left out of `model_fingerprint`.
_PLACE_CONFIG_FIELDS = frozenset(
    {"_name_or_path", "architectures", "auto_map", "custom_pipelines", "dtype", "torch_dtype"}
    | {"transformers_version", "_commit_hash", "_attn_implementation", "_attn_implementation_internal"}
)


def _without_place_fields(value):
    if isinstance(value, dict):
        return {key: _without_place_fields(item) for key, item in value.items() if key not in _PLACE_CONFIG_FIELDS}
    if isinstance(value, list):
        return [_without_place_fields(item) for item in value]
    return value


def model_fingerprint(model) -> str:
    """sha256 over a model's config and float32 weights as they are in memory, the same for the model after
    `save_pretrained` and `from_pretrained` (from any folder or the Hub): the config fields that saving or loading
    sets (paths, `architectures`, `auto_map`, dtype, ...) are left out. What an embedding index and an ONNX export
    record of the model that built them (about 0.3 s for MiniLM-L6)."""
    config = _without_place_fields(json.loads(model.config.to_json_string(use_diff=False)))
    digest = hashlib.sha256(json.dumps(json_safe(config), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy())
    return digest.hexdigest()


def file_checksum(path: str | os.PathLike) -> str:
    """`xxh3_128:<hex>` of a file's bytes, read `CHECKSUM_BLOCK` bytes at a time (its cost:
    benchmarks/index_checksum.py)."""
    try:
        import xxhash  # a dependency of datasets; in a try block, which transformers' check of model code skips
    except ImportError:
        raise ImportError("checksums of saved files need xxhash: pip install xxhash") from None
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while block := handle.read(CHECKSUM_BLOCK):
            digest.update(block)
    return f"xxh3_128:{digest.hexdigest()}"


def check_file_checksum(path: str | os.PathLike, recorded: str, recorded_in: str | os.PathLike, remedy: str) -> None:
    """`STSUserError`, in one line naming `path` and ending in `remedy`, unless its checksum is `recorded` (what
    `recorded_in` holds)."""
    if file_checksum(path) != recorded:
        raise STSUserError(
            f"{path} does not match the checksum recorded in {recorded_in}: the file is damaged, or is not the one "
            f"saved with it; {remedy}"
        )
