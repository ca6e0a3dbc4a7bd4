#!/usr/bin/env bash
# The planted-bug check of the fuzz sweep (docs/experiments.md, "Fuzzing"): in a scratch git
# worktree, undo one fixed bug at a time (or plant an off-by-one in the suspicion timeout),
# build, and run the CI sweep (`chorus simulate fuzz --seeds 1-60`). Each plant must make a seed
# fail; the script prints the first failing seed and its replay command, then the next plant.
# Usage: scripts/planted-bugs.sh [SEEDS]   (default 1-60, the CI sweep)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh
ensure_swift
ensure_libsodium
seeds="${1:-1-60}"
scratch="$(mktemp -d)/planted"
git worktree add -q --detach "$scratch" HEAD 2>/dev/null
trap 'git worktree remove --force "$scratch"' EXIT

# name | file | perl substitution that brings the bug back
plants=(
  "isolation deadline rounding (fuzz seed 36)|Sources/ChorusCore/PeerInstance.swift|s/now >= since \+ settings\.isolationWarningAfter/now - since >= settings.isolationWarningAfter/"
  "newcomer island (fuzz seed 46)|Sources/ChorusCore/PeerInstance.swift|s/\(othersLive == 0 \|\| !entryPointAnswered\)/othersLive == 0/"
  "id-only sync digest (fuzz seed 73)|Sources/ChorusMembership/MemberTable.swift|s/mix\(entryHash\(id\) \^ \(incarnation >> 16\)\)/entryHash(id)/"
  "stale promised deadline (the detection tail)|Sources/ChorusMembership/MembershipInstance.swift|s/promisedTick = max\(nextDeadline, now\)/promisedTick = nextDeadline/"
  "suspicion timeout off by one confirmation|Sources/ChorusMembership/Suspicion.swift|s/confirmations: s\.accusers\.count - 1/confirmations: s.accusers.count/g"
  "sealing to a restarted peer's earlier boot (fuzz seed 1062)|Sources/ChorusCore/PeerInstance.swift|s/wire\.peerRebooted\(peer, epoch: epoch\)/_ = (peer, epoch)/"
  "lone accusations declared unverified (fuzz seed 1252)|Sources/ChorusMembership/Suspicion.swift|s/ && s\.accusers\.count > 1 \{/ {/"
  "a newcomer's sync request ends a join (fuzz seed 1005)|Sources/ChorusMembership/MembershipInstance.swift|s/if isResponse \{ seeds = \[:\] \}/seeds = [:]/"
  "joiners pointed at one random live peer (fuzz seeds 1850 and 1987)|Sources/ChorusRuns/EntryPoints.swift|s/count = 2/count = 1/; s/settledOnes\.isEmpty \? candidates : settledOnes/candidates/"
  "entry points never recalled after a long partition|Sources/ChorusCore/PeerInstance.swift|s/for address in missing \{ emit/for address in missing where false { emit/"
  "failed verifications of corroborated crashes charged to health (fuzz seed 1411)|Sources/ChorusMembership/Probing.swift|s/s\.secondHand \|\| s\.accusers/s.accusers/"
  "a failure that leaves the neighbourhood stale (neighbourhoodIsCurrent)|Sources/ChorusCore/PeerInstance.swift|s/case \.joined, \.failed, \.left/case .joined, .left/; s/case \.suspected, \.refuted,/case .failed, .suspected, .refuted,/"
  "push-sum final totals not resent (checkAverageKept)|Sources/ChorusAveraging/GossipAverager.swift|s/guard round % UInt64\(settings\.closingResendRounds\) == 0 else \{ continue \}/continue/"
)
caught=0
for plant in "${plants[@]}"; do
    IFS='|' read -r name file substitution <<<"$plant"
    (cd "$scratch" && git checkout -q -- . && perl -0pi -e "$substitution" "$file")
    if (cd "$scratch" && git diff --quiet); then echo "PLANT DID NOT APPLY: $name"; exit 2; fi
    echo "== planted: $name"
    (cd "$scratch" && swift build -c release --product chorus >/dev/null 2>&1)
    bin="$(cd "$scratch" && swift build -c release --show-bin-path 2>/dev/null)/chorus"
    start=$(date +%s)
    # The CI step: the corpus of earlier failures replayed, then the seed sweep.
    corpus_failed=""
    for replay in scripts/fuzz-corpus/*.json; do
        if ! "$bin" simulate --replay "$replay" --out "$scratch/corpus" --no-plot >/dev/null 2>&1; then corpus_failed="$replay"; break; fi
    done
    if [ -n "$corpus_failed" ]; then
        caught=$((caught + 1))
        echo "   caught by the corpus: $corpus_failed ($(( $(date +%s) - start )) s; replay: chorus simulate --replay $corpus_failed --out DIR)"
        continue
    fi
    if out=$("$bin" simulate fuzz --seeds "$seeds" --out "$scratch/fuzz-runs" 2>/dev/null); then
        echo "   NOT CAUGHT by seeds $seeds ($(( $(date +%s) - start )) s)"
    else
        echo "$out" | grep -E "^seed|replay:" | sed 's/^/   /'
        echo "   caught in $(( $(date +%s) - start )) s"
        # The printed replay must fail again with the same violation.
        seed=$(echo "$out" | sed -n 's/^seed \([0-9]*\) .*/\1/p' | head -1)
        first=$(echo "$out" | grep "^seed $seed " | sed 's/.*FAIL: //')
        again=$("$bin" simulate fuzz --seeds "$seed" --out "$scratch/replay" 2>/dev/null | grep "^seed $seed " | sed 's/.*FAIL: //') || true
        if [ -n "$first" ] && [ "$first" = "$again" ]; then
            caught=$((caught + 1))
            echo "   the replay fails the same way"
        else
            echo "   THE REPLAY DIFFERS: $again"
        fi
    fi
done
echo "caught $caught of ${#plants[@]} plants with seeds $seeds"
[ "$caught" = "${#plants[@]}" ]
