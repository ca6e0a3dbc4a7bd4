#!/usr/bin/env bash
# libFuzzer + AddressSanitizer on the decoders of untrusted input (docs/security.md, "Fuzzing with
# libFuzzer"). Each target is built from Fuzz/Targets/TARGET with `swiftc -sanitize=fuzzer,address`
# in its own build path (.build/fuzz; a plain `swift build` never sees the targets), and
# runs on its seed corpus: valid inputs the target writes itself from the public APIs and fixed
# keys (.build/fuzz/seeds/TARGET, regenerated every run), plus, for config and schedule, the
# example files in Peers/ and scripts/schedules/. New inputs it finds go to .build/fuzz/corpus/TARGET,
# crashes to .build/fuzz/artifacts/TARGET/.
#
# Usage: scripts/fuzz.sh TARGET SECONDS [-- LIBFUZZER-FLAGS…]   fuzz one target for SECONDS
#        scripts/fuzz.sh --smoke [SECONDS]    every target for SECONDS each (default 8) from its seeds alone,
#                                             as scripts/test.sh runs it (about 80 s after the build)
#        scripts/fuzz.sh --reproduce TARGET FILE   run one input (a crash artifact) once, with its report
#        scripts/fuzz.sh --list               the targets and what each covers
#        scripts/fuzz.sh --help
# Examples: scripts/fuzz.sh datagram 60
#           scripts/fuzz.sh peer 300 -- -runs=10000000      (stop after 10⁷ executions, if sooner)
# Prints the executions, executions per second and, for a crash, the input file and the command
# that reproduces it; exits 1 when a target crashed, broke an invariant, leaked or timed out.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh

targets="datagram reassembler membership parameters config schedule checkpoint peer"
describe() {
    case "$1" in
        datagram) echo "DatagramCodec.open: header checks, then (resealed) every body kind, and paired datagrams (session keys); decoding then encoding gives the input back" ;;
        reassembler) echo "Reassembler: manifests and chunks from opened datagrams, small budgets; eviction, expiry, accounting" ;;
        membership) echo "MembershipMessage.decode and Claim.read, then a MembershipInstance receiving and ticking" ;;
        parameters) echo "ParametersMessage.decode, then plain (clipped) and push-sum GossipAverager receive and mix" ;;
        config) echo "PeerConfig.parse: TOML (toml++ via TOMLKit) and every field; a parsed file gives valid settings" ;;
        schedule) echo "Schedule.parse, review against a run, targets, join counts, Poisson times" ;;
        checkpoint) echo "Checkpoint.decode, as read and with the checksum recomputed; re-encoding gives the file back" ;;
        peer) echo "PeerInstance.receive: datagrams re-signed and resealed, through wire, membership, averaging, model handover" ;;
        *) return 1 ;;
    esac
}
# Extra libFuzzer flags per target. config and schedule: TOMLKit leaks every document it parses
# (Fuzz/lsan-suppressions.txt), so LeakSanitizer would check after every new input and find only
# that, at a hundredth of the speed.
flags() {
    case "$1" in
        config|schedule) echo "-detect_leaks=0" ;;
    esac
}
# Largest input each target is given (bytes): a datagram, a few dozen datagrams, a text file.
max_len() {
    case "$1" in
        datagram) echo 2048 ;;
        reassembler|peer) echo 24576 ;;
        config|schedule) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

build_path=.build/fuzz
# The Swift runtime's own crash reporter would wait on a crashing process; libFuzzer and ASan
# report instead. Leaks inside TOMLKit are known and bounded (Fuzz/lsan-suppressions.txt).
fuzzer() {  # fuzzer TARGET ARGS…
    local bin="$build_path/release/fuzz-$1"
    shift
    SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan-suppressions.txt${LSAN_OPTIONS:+:$LSAN_OPTIONS}" "$bin" "$@"
}
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

build() {  # build TARGET…
    ensure_swift
    ensure_libsodium
    for t in "$@"; do
        echo "== building fuzz-$t (release, -sanitize=fuzzer,address)" >&2
        # SwiftPM's --sanitize fuzzer links libFuzzer's main in place of the target's. But swiftc
        # honours only the last of several -sanitize flags, and `--sanitize fuzzer --sanitize
        # address` passes two in no fixed order: a build without coverage fuzzes blind ("no
        # interesting inputs were found"), one without ASan misses overflows. So both go in one
        # -Xswiftc flag, which comes last; clang (toml++, the C shims) adds up its -fsanitize
        # flags. The linker's "Cannot export local symbol" warnings for ASan's helpers are harmless.
        # A failed build must stop here: an earlier build's binary would be fuzzed in its place.
        if ! CHORUS_FUZZ=1 swift build -c release --build-path "$build_path" --product "fuzz-$t" --sanitize fuzzer \
            -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address -Xcxx -fsanitize=address 2>&1 \
            | { grep -v "Cannot export local symbol" | grep -E "error|warning: |Compiling fuzz|complete" >&2 || true; }; then
            echo "fuzz.sh: building fuzz-$t failed" >&2
            return 1
        fi
        [ -x "$build_path/release/fuzz-$t" ] || { echo "fuzz.sh: building fuzz-$t failed" >&2; return 1; }
    done
}

# Seeds: written by the target itself (LLVMFuzzerInitialize with CHORUS_FUZZ_WRITE_SEEDS).
seeds() {  # seeds TARGET → directory
    local t="$1" dir="$build_path/seeds/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! CHORUS_FUZZ_WRITE_SEEDS="$dir" fuzzer "$t" >"$dir.log" 2>&1; then
        cat "$dir.log" >&2
        echo "fuzz.sh: fuzz-$t could not write its seeds" >&2
        return 1
    fi
    case "$t" in
        config) for f in Peers/*/*.toml; do cp "$f" "$dir/$(echo "$f" | tr / _)"; done ;;
        schedule) for f in scripts/schedules/*.toml; do cp "$f" "$dir/$(basename "$f")"; done ;;
    esac
    echo "$dir"
}

# Longest single fuzzer process (seconds; 0: no limit). config and schedule: what TOMLKit leaks
# (about half a kilobyte per input) would reach libFuzzer's 2 GB memory limit in about six minutes,
# so longer runs go in two-minute pieces, each a new process on the same corpus.
chunk_seconds() {
    case "$1" in
        config|schedule) echo 120 ;;
        *) echo 0 ;;
    esac
}

# run TARGET SECONDS CORPUS [FLAGS…]: fuzz, print the figures, return 1 on any finding.
run() {
    local t="$1" seconds="$2" corpus="$3"
    shift 3
    local artifacts="$build_path/artifacts/$t"
    local seed_dir
    seed_dir="$(seeds "$t")" || return 1
    mkdir -p "$corpus" "$artifacts" "$build_path/logs"
    echo "== fuzz-$t for ${seconds} s: $(describe "$t")"
    local chunk left="$seconds" part=0 status=0 runs=0 time=0 peak=0 log logs=""
    chunk="$(chunk_seconds "$t")"
    case " $* " in *" -runs="*) chunk=0 ;; esac  # a run count is for one process
    while :; do
        local this="$left"
        if [ "$chunk" -gt 0 ] && [ "$left" -gt "$chunk" ]; then this="$chunk"; fi
        part=$((part + 1))
        log="$build_path/logs/$t-$(date +%Y%m%d-%H%M%S)-$part.log"
        logs="$logs $log"
        # A slow input (10 s) counts as a finding: a parser must not hang.
        # shellcheck disable=SC2046  # flags: zero or more words
        fuzzer "$t" "$corpus" "$seed_dir" -max_total_time="$this" -max_len="$(max_len "$t")" \
            -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" $(flags "$t") "$@" >"$log" 2>&1 || status=$?
        # A build without coverage counters fuzzes blind, and says so only in passing.
        if ! grep -q "inline 8-bit counters" "$log"; then
            echo "   fuzz-$t has no coverage instrumentation (see $log): rebuild with rm -rf $build_path" >&2
            return 1
        fi
        local r s p
        r="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
        s="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
        p="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
        runs=$((runs + ${r:-0}))
        time=$((time + ${s:-$this}))
        [ "${p:-0}" -gt "$peak" ] && peak="$p"
        left=$((left - this))
        if [ "$status" != 0 ] || [ "$left" -le 0 ] || [ "$chunk" = 0 ]; then break; fi
    done
    local rate="-"
    [ "$time" -gt 0 ] && rate=$((runs / time))
    echo "   executions: $runs   exec/s: $rate   peak RSS: $peak MB   corpus: $(ls "$corpus" | wc -l) inputs   log:$logs"
    if [ "$status" != 0 ]; then
        echo "   FINDING (exit $status):"
        grep -E "^==[0-9]+==ERROR|^SUMMARY|fuzz invariant broken|Fatal error|ERROR: libFuzzer|Assertion" "$log" | head -5 | sed 's/^/     /'
        local file
        file="$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)"
        if [ -n "$file" ]; then
            echo "   input: $file"
            echo "   reproduce: scripts/fuzz.sh --reproduce $t $file"
        fi
        return 1
    fi
}

case "${1:-}" in
    ""|-h|--help)
        usage
        exit 0 ;;
    --list)
        for t in $targets; do printf "%-12s %s\n" "$t" "$(describe "$t")"; done
        echo "handshake    (no target of its own: the keyed hello, which carries a boot key, is in the datagram and peer targets' seeds)"
        exit 0 ;;
    --smoke)
        seconds="${2:-8}"
        build $targets
        failed=""
        # From the seeds alone (a fresh corpus each time): the same few seconds on every machine.
        for t in $targets; do
            rm -rf "$build_path/smoke-corpus/$t"
            run "$t" "$seconds" "$build_path/smoke-corpus/$t" || failed="$failed $t"
        done
        if [ -n "$failed" ]; then echo "fuzz smoke run: findings in$failed"; exit 1; fi
        echo "fuzz smoke run: every target ran ${seconds} s without a finding"
        exit 0 ;;
    --reproduce)
        [ $# -ge 3 ] || { echo "usage: scripts/fuzz.sh --reproduce TARGET FILE" >&2; exit 2; }
        describe "$2" >/dev/null || { echo "fuzz.sh: unknown target $2 (see --list)" >&2; exit 2; }
        build "$2"
        fuzzer "$2" "$3"
        exit $? ;;
    -*)
        echo "fuzz.sh: unknown option $1 (see --help)" >&2
        exit 2 ;;
esac

target="$1"
describe "$target" >/dev/null || { echo "fuzz.sh: unknown target $target (see --list)" >&2; exit 2; }
seconds="${2:-}"
case "$seconds" in
    ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number (see --help)" >&2; exit 2 ;;
esac
shift 2
[ "${1:-}" = "--" ] && shift
build "$target"
run "$target" "$seconds" "$build_path/corpus/$target" "$@"
