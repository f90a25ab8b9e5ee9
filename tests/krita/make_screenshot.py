"""Takes the README's Krita screenshot: the real Krita 5.2 GUI under Xvfb (tools/hostapps),
the plug-in installed with `esm install-plugin krita`, a daemon on the host, a tileable
texture made from the middle of IMAGE by the menu action with the docker's settings, then
"Show tiling": the tile in wrap-around mode beside the docker. Same script as the GUI test
(gui_texture.py), stopped after the screenshot.

    .venv/bin/python tests/krita/make_screenshot.py IMAGE.png docs/images/krita.png
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import krita_harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--side", type=int, default=192, help="square crop of IMAGE used as the document")
    parser.add_argument("--tile", type=int, default=128, help="size of the synthesised tile")
    parser.add_argument("--preset", default="balanced")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esm-krita-shot-", dir="/tmp"))
    endpoint = f"tcp://127.0.0.1:{krita_harness.free_port()}"
    esm = [sys.executable, "-m", "esm_cli.main", "daemon"]
    subprocess.run([*esm, "start", "--endpoint", endpoint], check=True, timeout=300)
    try:
        install = krita_harness.KritaInstall(work)
        done = install.install(endpoint)
        if done.returncode != 0:
            sys.exit(done.stderr)
        image = np.asarray(Image.open(args.image).convert("RGBA"))[:args.side, :args.side]
        exemplar = work / "exemplar.rgba"
        exemplar.write_bytes(np.ascontiguousarray(image).tobytes())
        result = install.gui("gui_texture.py", ESM_TEST_EXEMPLAR=str(exemplar), ESM_TEST_SIZE=str(args.side),
                             ESM_TEST_TILE=str(args.tile), ESM_TEST_PRESET=args.preset,
                             ESM_TEST_SCREENSHOT_ONLY="1").finish()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        Image.open(result["out"] / "window.png").convert("RGB").save(args.output, optimize=True)
        print(f"{args.output}: {result['layer']['name']}, {result['texture_seconds']:.1f} s")
    finally:
        subprocess.run([*esm, "stop", "--endpoint", endpoint], timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
