#!/usr/bin/env bash
# Set up everything, start the lab (1 vCenter + 2 KVM hosts), register and sync it, serve the API.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/tessera demo "$@"
