#!/usr/bin/env bash
# Runs scripts/netns-cluster.sh end to end (6 hosts, a partition that heals, a crash, a join) and
# checks that the experiment wrote its files, saw every action and left no namespace or veth
# link behind. Needs root and iproute2; says so and skips otherwise (exit 0).
# Usage: scripts/test-netns.sh   (CHORUS_BIN: the chorus binary to use; scripts/test.sh sets it)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
    echo "test-netns.sh: skipped (needs root and network namespaces)"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/schedule.toml" <<'TOML'
[[action]]
at = 8
action = "partition"
peers = ["p0", "p1", "p2"]
[[action]]
at = 16
action = "heal"
[[action]]
at = 18
action = "crash"
peers = ["p5"]
[[action]]
at = 19
action = "join"
count = 1
TOML
links_before="$(ip -o link show type veth | wc -l)"
scripts/netns-cluster.sh --hosts 6 -- --peers 6 --duration 40 --schedule "$work/schedule.toml" \
    --out "$work/run" --no-plot > "$work/log" 2>&1 || { cat "$work/log"; echo "test-netns.sh: the experiment failed" >&2; exit 1; }
fail() { cat "$work/log"; echo "test-netns.sh: $*" >&2; exit 1; }
[ -z "$(ip netns list | grep '^chorus-' || true)" ] || fail "namespaces left behind: $(ip netns list | grep '^chorus-')"
[ "$(ip -o link show type veth | wc -l)" = "$links_before" ] || fail "veth links left behind"
python3 - "$work/run" <<'PY' || fail "the run's files are not what they should be"
import csv, json, sys
run = sys.argv[1]
summary = json.load(open(run + "/summary.json"))
events = list(csv.DictReader(open(run + "/events.csv")))
assert summary["real"] and summary["final"]["livePeers"] == 6, summary["final"]
assert [e["action"] for e in events] == ["partition", "heal", "crash", "join"], events
unseen = [e for e in events if e["action"] != "partition" and not e["seen_by_all_after"]]
assert not unseen, f"not seen by all: {unseen}"
assert float(events[1]["seen_by_all_after"]) <= 10, "views did not agree within 10 s of the heal"
print(f"test-netns.sh: 6 hosts, heal seen by all after {events[1]['seen_by_all_after']} s, "
      f"crash after {events[2]['seen_by_all_after']} s; accuracy {summary['final']['accuracyMean']:.3f}; no namespace left")
PY
