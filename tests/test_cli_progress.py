"""What `esm synth`, `esm fill` and `esm variants` say while they run (the real command):
plain progress lines, a few at most, when stderr is a pipe or a log; tqdm's bar on a
terminal; and the written path either way, also with --quiet."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
from PIL import Image

from esm_cli.progressbar import PLAIN_EVERY_S

ROOT = Path(__file__).resolve().parents[1]
BRICK = ROOT / "esm_core" / "data" / "brick.png"
STEPS = ["--size", "32x32", "--phases", "1", "--iterations", "12", "--no-daemon"]
LINE = re.compile(r"^(synth|fill|variants variant): +(\d+)% phase \d+/\d+ step (\d+)/\d+ .*\((\d+) s\)$")


def esm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_without_a_terminal_progress_is_a_few_plain_lines_and_the_path_is_printed(tmp_path: Path) -> None:
    mask = np.zeros((256, 256), np.uint8)
    mask[100:130, 100:130] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    runs = [
        esm("synth", str(BRICK), "-o", str(tmp_path / "s.png"), *STEPS),
        esm("fill", str(BRICK), "--mask", str(tmp_path / "mask.png"), "-o", str(tmp_path / "f.png"),
            "--phases", "1", "--iterations", "12", "--no-daemon"),
        esm("variants", str(BRICK), "-o", str(tmp_path / "v"), "-n", "1", *STEPS),
    ]
    for run, written in zip(runs, ("s.png", "f.png", "v/variant-0.png")):
        assert run.returncode == 0, run.stderr
        assert f"wrote {tmp_path / written}" in run.stdout.splitlines()
        lines = [LINE.match(line) for line in run.stderr.splitlines() if "%" in line]
        assert lines and all(lines), run.stderr
        assert lines[-1].group(2) == "100"
        # the first report, then at most one line every PLAIN_EVERY_S seconds, then the last
        seconds = [int(match.group(4)) for match in lines]
        assert all(b - a >= PLAIN_EVERY_S - 1 for a, b in zip(seconds[:-1], seconds[1:-1])), run.stderr
        assert len(lines) < 12, "not one line per step"
        assert "\r" not in run.stderr and "\033" not in run.stderr


def test_quiet_prints_only_the_written_path(tmp_path: Path) -> None:
    run = esm("synth", str(BRICK), "-o", str(tmp_path / "q.png"), *STEPS, "-q")
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout == f"wrote {tmp_path / 'q.png'}\n"


def test_on_a_terminal_the_bar_is_tqdms(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    process = subprocess.Popen([sys.executable, "-m", "esm_cli.main", "synth", str(BRICK), "-o",
                                str(tmp_path / "t.png"), *STEPS], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=terminal, stdin=subprocess.DEVNULL)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(timeout=300) == 0
    text = shown.decode(errors="replace")
    assert "\r" in text and "100%" in text and "█" in text, text  # tqdm redraws one line with block characters
    assert process.stdout is not None and process.stdout.read().decode() == f"wrote {tmp_path / 't.png'}\n"
