#!/usr/bin/env bash
# Runs scripts/netns-cluster.sh end to end and checks what the experiments wrote:
#  1. 6 namespaces sharing this machine's files (--netns): a partition that heals, a crash, a join;
#  2. 6 namespaces as machines of their own (--machines: chorus experiment --hosts FILE, files and
#     binary copied, every action through `ip netns exec`): replace-quarter.toml on 12 peers, every
#     live peer at 93 % or more, consensus within 0.02, every action seen by all, the plot drawn;
#  3. the same interrupted by Ctrl-C: exit 130, the files written, no process left on any host;
# and that no namespace, veth link or copied file is left behind. Needs root and iproute2; says
# so and skips otherwise (exit 0).
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

echo "== chorus experiment --hosts FILE over 6 namespaces as machines: replace-quarter.toml"
scripts/netns-cluster.sh --hosts 6 --machines -- --peers 12 --duration 120 --schedule scripts/schedules/replace-quarter.toml \
    --out "$work/hosts" > "$work/log" 2>&1 || { cat "$work/log"; echo "test-netns.sh: the --hosts experiment failed" >&2; exit 1; }
[ -z "$(ls /tmp | grep -E '^chorus-[0-9]+-files$' || true)" ] || fail "copied files left in /tmp: $(ls /tmp | grep -E '^chorus-[0-9]+-files$')"
python3 - "$work/hosts" <<'PY' || fail "the --hosts run is not what it should be"
import csv, json, os, sys
run = sys.argv[1]
summary = json.load(open(run + "/summary.json"))
events = list(csv.DictReader(open(run + "/events.csv")))
final = summary["final"]
assert len(summary["hosts"]) == 6 and all(abs(h["clockOffset"]) < 1 for h in summary["hosts"]), summary.get("hosts")
assert final["livePeers"] == 12 and final["accuracyMin"] >= 0.93 and final["consensusMax"] <= 0.02, final
assert [e["action"] for e in events] == ["crash"] * 3 + ["join"] * 3, events
assert all(e["seen_by_all_after"] for e in events), f"not seen by all: {events}"
for name in ("series.csv", "events.csv", "summary.json"):
    assert os.path.getsize(os.path.join(run, name)) > 0, name
if not os.path.exists(run + "/convergence.png"):
    print("test-netns.sh: no convergence.png (matplotlib missing?)", file=sys.stderr)
print(f"test-netns.sh: --hosts over 6 machines: 12 live peers, accuracy min {final['accuracyMin']:.3f}, "
      f"consensus max {final['consensusMax']:.4f}, crashes seen by all after "
      f"{max(float(e['seen_by_all_after']) for e in events if e['action'] == 'crash'):.1f} s at most")
PY
grep -q "^drew " "$work/log" || grep -q "no plot: matplotlib is missing" "$work/log" || fail "no plot drawn and no reason given"

echo "== Ctrl-C during a --hosts experiment"
scripts/netns-cluster.sh --hosts 3 --machines -- --peers 6 --duration 60 --out "$work/interrupted" > "$work/log" 2>&1 &
cluster=$!
for _ in $(seq 1 300); do grep -q "peers running" "$work/log" && break; sleep 0.2; done
grep -q "peers running" "$work/log" || { kill -TERM "$cluster"; wait "$cluster" || true; fail "the peers did not start within 60 s"; }
sleep 3
# chorus network from the controller's namespace: every member of the view, with each peer's own
# step read from its admin endpoint on its host (peer i: 10.213.0.(i mod 3 + 1):8100+i).
also=()
for i in 1 2 3 4 5; do also+=(--also "10.213.0.$((i % 3 + 1)):$((8100 + i))"); done
view="$(ip netns exec "chorus-$cluster-ctl" "${CHORUS_BIN:-.build/release/chorus}" network --admin 10.213.0.1:8100 "${also[@]}" --json)" \
    || { kill -TERM "$cluster"; wait "$cluster" || true; fail "chorus network across the hosts failed: $view"; }
python3 -c "
import json, sys
view = json.loads(sys.argv[1])
rows = view['members']
assert len(rows) == 6 and all(r['status'] == 'alive' and isinstance(r.get('step'), int) and r['step'] > 0 for r in rows), rows
assert view['unreachable'] == [], view['unreachable']
print('test-netns.sh: chorus network across 3 hosts shows all 6 peers alive with their own steps', sorted(r['step'] for r in rows))
" "$view" || { kill -TERM "$cluster"; wait "$cluster" || true; fail "chorus network did not show every peer's step"; }
kill -TERM "$cluster"  # (a background job ignores SIGINT; the script forwards TERM to the experiment as Ctrl-C)
set +e; wait "$cluster"; status=$?; set -e
[ "$status" = 130 ] || fail "interrupted experiment exited $status, expected 130"
grep -q "left .* process(es) running" "$work/log" && fail "Ctrl-C left peers running on the hosts"
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['interruptedAt'] is not None and s['final']['livePeers'] == 6, s" \
    "$work/interrupted/summary.json" || fail "the interrupted run's summary is not what it should be"
[ -z "$(ip netns list | grep '^chorus-' || true)" ] || fail "namespaces left behind after Ctrl-C"
echo "test-netns.sh: Ctrl-C stopped every peer on every host (exit 130), the files hold the measurements"
