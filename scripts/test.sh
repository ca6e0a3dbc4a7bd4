#!/usr/bin/env bash
# Builds Chorus and runs every test (unit, simulator and real-process integration tests).
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter ChorusWireTests]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh
ensure_swift
ensure_libsodium

echo "== building (debug, with tests)"
swift build --build-tests
# Integration tests start real peer processes from this binary.
CHORUS_BIN="$(swift build --show-bin-path)/chorus"
export CHORUS_BIN
if [ $# -gt 0 ]; then
    echo "== running tests: $*"
    swift test --skip-build "$@"
else
    # Pure, simulated and in-process tests in parallel; then the tests that start real peer
    # processes one at a time, so their wall-clock bounds do not compete with each other.
    echo "== running tests (pure and simulated, in parallel)"
    swift test --skip-build --skip 'ChorusPeerTests|ChorusExperimentTests'
    echo "== running tests (real processes and sockets, one at a time)"
    swift test --skip-build --no-parallel --filter 'ChorusPeerTests|ChorusExperimentTests'
fi
echo "== the fuzz step: the corpus of earlier failures, then seeds 1-60 (release build; scripts/fuzz-sim.sh for long sweeps)"
scripts/fuzz-sim.sh 1-60 0 "$(mktemp -d)/fuzz"
echo "== libFuzzer + AddressSanitizer: every decoder target briefly from its seeds (scripts/fuzz.sh for long runs)"
scripts/fuzz.sh --smoke
echo "== checking the plot scripts"
scripts/test-plots.sh
echo "== installing into a temporary prefix (binary, man page, completions, systemd unit)"
scripts/test-install.sh
echo "== an experiment over 6 network namespaces"
scripts/test-netns.sh
