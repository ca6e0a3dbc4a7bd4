#!/usr/bin/env bash
# Re-runs every figure of docs/convergence.md (spectra, contraction, loss, churn, accuracy against
# chorus baseline, real processes) and rewrites the page. About 15 minutes on two cores.
# Usage: scripts/convergence.sh [--quick] [--no-real]
#   --quick    smaller cases, printed instead of written (checks the script)
#   --no-real  skip the real-process runs
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh
chorus="$(release_chorus)"
exec python3 scripts/convergence.py "$chorus" "$@"
