#!/usr/bin/env bash
# The main job: builds Chorus in release mode and runs `chorus demo`, a local network of peer
# processes training on the bundled digits data. Arguments go to `chorus demo`
# (e.g. scripts/demo.sh --peers 4 --model mlp --json); see `chorus demo --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh

echo "== building (release)" >&2
chorus="$(release_chorus)"
exec "$chorus" demo "$@"
