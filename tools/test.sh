#!/usr/bin/env bash
# The whole test suite, as CI runs it: environment, the GIMP/Krita root for the plug-in
# tests (built once, then reused), the import directions (.importlinter), then pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/hostapps/setup.sh .hostapps/trixie
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
