#!/usr/bin/env bash
# Set up everything, then run the linters and the whole test suite against real backends.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "==> ruff";  .venv/bin/ruff check tessera tests bench
echo "==> mypy";  .venv/bin/mypy tessera
echo "==> pytest"
exec .venv/bin/pytest -p no:cacheprovider "$@"
