"""Takes the README's GIMP screenshot: the real GIMP 3 GUI under Xvfb (tools/hostapps), the
plug-in installed with `esm install-plugin gimp`, a daemon on the host, an elliptic hole
filled by ESM Fill Selection, and the ESM Texture from Selection dialog open. The X screen
is grabbed from the host (the root shares /tmp, hence the X socket).

    .venv/bin/python tests/gimp/make_screenshot.py IMAGE.png docs/images/gimp.png
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import ImageGrab

ROOT = Path(__file__).resolve().parents[2]
ROOTFS = ROOT / ".hostapps" / "trixie"
RUN_IN_CHROOT = ROOT / "tools" / "hostapps" / "run-in-chroot.sh"
DIALOG_WIDTH = 540  # without a window manager dialogs open at (0, 0): GIMP goes right of it
SCREEN = (DIALOG_WIDTH + 1100, 720)


def esm(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "esm_cli.main", *args], check=True, timeout=600)


def window_layout(profile: Path, env: dict[str, str]) -> None:
    """GIMP's default window layout (written by one GUI start), moved right of where the
    plug-in's dialog opens, enlarged, with a wider layers dock."""
    subprocess.run([str(RUN_IN_CHROOT), str(ROOTFS), "timeout", "120", "gimp-3.0", "--no-splash",
                    "--batch-interpreter=python-fu-eval", "-b", "pass", "--quit"],
                   cwd=ROOT, env=env, capture_output=True, check=True)
    sessionrc = (profile / "sessionrc").read_text()
    window = '(factory-entry "gimp-single-image-window")'
    head, tail = sessionrc.split(window, 1)
    tail = re.sub(r"\(position \d+ \d+\)", f"(position {DIALOG_WIDTH} 0)", tail, count=1)
    tail = re.sub(r"\(size \d+ \d+\)", f"(size {SCREEN[0] - DIALOG_WIDTH} {SCREEN[1]})", tail, count=1)
    tail = re.sub(r'\(right-docks-width "\d+"\)', '(right-docks-width "300")', tail, count=1)
    (profile / "sessionrc").write_text(head + window + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--select", type=int, nargs=4, default=[70, 80, 110, 90], metavar=("X", "Y", "W", "H"))
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    work = Path(tempfile.mkdtemp(prefix="esm-shot-", dir="/tmp"))
    python = work / "chroot-python3"
    python.write_text(f'#!/bin/sh\ncd "{ROOT}" && exec "{RUN_IN_CHROOT}" "{ROOTFS}" python3 "$@"\n')
    python.chmod(0o755)
    profile = work / "gimp-profile"
    shutil.copytree(ROOTFS / "root/.config/GIMP/3.0", profile, symlinks=True)
    window_layout(profile, env={**os.environ, "GIMP3_DIRECTORY": str(profile), "HOSTAPPS_XVFB": "1",
                                "HOSTAPPS_PASSENV": "GIMP3_DIRECTORY"})
    esm("install-plugin", "gimp", "--dest", str(profile / "plug-ins"), "--python", str(python),
        "--endpoint", endpoint)
    shutil.copy(args.image, work / "input.png")
    settings = {"image": str(work / "input.png"), "select": args.select, "ready": str(work / "ready"),
                "args": {"endpoint": endpoint, "seed": 7, "quality": "balanced"},
                "esm-fill-selection": {"context": 48}}
    (work / "gui.json").write_text(json.dumps(settings))
    esm("daemon", "start", "--endpoint", endpoint)
    env = {**os.environ, "GIMP3_DIRECTORY": str(profile), "ESM_GUI": str(work / "gui.json"), "HOSTAPPS_XVFB": "1",
           "HOSTAPPS_XVFB_SCREEN": f"{SCREEN[0]}x{SCREEN[1]}x24", "HOSTAPPS_PASSENV": "GIMP3_DIRECTORY ESM_GUI"}
    gimp = subprocess.Popen([str(RUN_IN_CHROOT), str(ROOTFS), "timeout", "600", "gimp-3.0", "--no-splash",
                             "--batch-interpreter=python-fu-eval",
                             "-b", "exec(open('/project/tests/gimp/gui_driver.py').read())"],
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (work / "ready").exists():
            if gimp.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("GIMP ended (or took too long) before the image was shown")
            time.sleep(1)
        time.sleep(8)  # let GIMP draw the canvas, the layers and the dialog
        shot = ImageGrab.grab(xdisplay=(work / "ready").read_text())
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shot.save(args.output, optimize=True)
        print(f"{args.output}: {shot.size[0]}x{shot.size[1]}")
    finally:
        gimp.terminate()  # run-in-chroot.sh stops GIMP, then Xvfb
        try:
            gimp.wait(30)
        except subprocess.TimeoutExpired:  # GIMP asking about the unsaved image: the whole run goes
            os.killpg(gimp.pid, signal.SIGKILL)
            gimp.wait(30)
        esm("daemon", "stop", "--endpoint", endpoint)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
