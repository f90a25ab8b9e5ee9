"""Where the benchmarks find development textures: shared/textures beside the repository
(as in every checkout and CI run of this project), or $ESM_TEXTURES."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXTURES = Path(os.environ.get("ESM_TEXTURES") or ROOT.parent / "shared" / "textures")
