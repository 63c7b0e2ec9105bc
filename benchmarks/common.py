"""Paths every benchmark shares: the repository and the offline data folder.

The data folder holds `stsbenchmark/` (the original STS-B files), `sick/SICK.txt` and `sts12-15/stsYY.jsonl`; it is
`$STS_DATA_DIR`, else `../shared/data` beside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("STS_DATA_DIR") or REPO.parent / "shared" / "data")
STSB_DIR = DATA_DIR / "stsbenchmark"
