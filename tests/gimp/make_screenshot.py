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
SCREEN = (1200, 760)
SESSIONRC = f"""(session-info "toplevel"
    (factory-entry "gimp-single-image-window")
    (position 0 0)
    (size {SCREEN[0]} {SCREEN[1]}))
"""


def esm(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "esm_cli.main", *args], check=True, timeout=600)


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
    (profile / "sessionrc").write_text(SESSIONRC)
    esm("install-plugin", "gimp", "--dest", str(profile / "plug-ins"), "--python", str(python),
        "--endpoint", endpoint)
    shutil.copy(args.image, work / "input.png")
    settings = {"image": str(work / "input.png"), "select": args.select, "ready": str(work / "ready"),
                "args": {"endpoint": endpoint, "seed": 7, "quality": "balanced", "context": 48}}
    (work / "gui.json").write_text(json.dumps(settings))
    esm("daemon", "start", "--endpoint", endpoint)
    displays = set(os.listdir("/tmp/.X11-unix")) if os.path.isdir("/tmp/.X11-unix") else set()
    env = {**os.environ, "GIMP3_DIRECTORY": str(profile), "ESM_GUI": str(work / "gui.json"), "HOSTAPPS_XVFB": "1",
           "HOSTAPPS_XVFB_SCREEN": f"{SCREEN[0]}x{SCREEN[1]}x24", "HOSTAPPS_PASSENV": "GIMP3_DIRECTORY ESM_GUI"}
    gimp = subprocess.Popen([str(RUN_IN_CHROOT), str(ROOTFS), "timeout", "600", "gimp-3.0", "--no-splash",
                             "--batch-interpreter=python-fu-eval",
                             "-b", "exec(open('/project/tests/gimp/gui_driver.py').read())"],
                            cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 600
        while not (work / "ready").exists():
            if gimp.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("GIMP ended (or took too long) before the image was shown")
            time.sleep(1)
        time.sleep(8)  # let GIMP draw the canvas, the layers and the dialog
        [display] = set(os.listdir("/tmp/.X11-unix")) - displays
        shot = ImageGrab.grab(xdisplay=":" + display.lstrip("X"))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shot.save(args.output, optimize=True)
        print(f"{args.output}: {shot.size[0]}x{shot.size[1]}")
    finally:
        gimp.send_signal(signal.SIGTERM)
        gimp.wait(30)
        esm("daemon", "stop", "--endpoint", endpoint)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
