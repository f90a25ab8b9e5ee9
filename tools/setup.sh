#!/usr/bin/env bash
# Sets up a development/CI environment in .venv: torch (CPU build on these machines), the
# project in editable mode, and the test tools. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# torch first and pinned: on the project's machines this release is the CPU build on local disk;
# elsewhere pip takes the platform's default build (CUDA on Linux, MPS-capable on macOS).
.venv/bin/python -m pip install -q --disable-pip-version-check "${ESM_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
