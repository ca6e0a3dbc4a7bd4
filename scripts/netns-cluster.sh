#!/usr/bin/env bash
# Runs `chorus experiment` with its peers spread over several "hosts" on this machine: each host
# is a Linux network namespace with its own address on a bridge, so peers talk over veth links,
# not loopback. Needs root. Removes every namespace and link it made on exit, Ctrl-C or failure.
#
# Usage: sudo scripts/netns-cluster.sh [--hosts N] [--machines] -- EXPERIMENT OPTIONS
#   e.g. sudo scripts/netns-cluster.sh --hosts 6 -- --peers 6 --duration 120 \
#            --schedule scripts/schedules/partition-heal.toml --out runs/netns6
#   --machines: treat each namespace as a machine of its own, as over ssh: the experiment gets
#   --hosts FILE (shell "ip netns exec {host} sh -c {command}", a directory per host under
#   /tmp/NAME-files/), so its files and binary are copied and every action goes through the shell.
#
# Layout (NAME = chorus-<pid>): namespace NAME-br holds a bridge; NAME-h1 … NAME-hN each get one
# veth end with address 10.213.0.1 … 10.213.0.N/24, the other end on the bridge; NAME-ctl
# (10.213.0.254) runs the experiment, which starts each peer with `ip netns exec NAME-hK`. No
# address is added outside these namespaces; peers are placed on the hosts round-robin.
# CHORUS_BIN=path uses that chorus binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=6
machines=0
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts="$2"; shift 2 ;;
        --machines) machines=1; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "netns-cluster.sh: unknown argument $1 (options of chorus experiment go after --; see --help)" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "netns-cluster.sh: network namespaces need root; run: sudo $0 --hosts $hosts -- $*" >&2
    exit 2
fi
case "$hosts" in ''|*[!0-9]*) echo "netns-cluster.sh: --hosts must be a number from 2 to 200, got $hosts" >&2; exit 2 ;; esac
if [ "$hosts" -lt 2 ] || [ "$hosts" -gt 200 ]; then echo "netns-cluster.sh: --hosts must be from 2 to 200, got $hosts" >&2; exit 2; fi
command -v ip >/dev/null || { echo "netns-cluster.sh: the 'ip' command is missing: apt-get install iproute2" >&2; exit 3; }

if [ -n "${CHORUS_BIN:-}" ]; then
    chorus="$CHORUS_BIN"  # a binary already built (scripts/test.sh passes its debug build)
else
    . scripts/lib/dependencies.sh
    chorus="$(release_chorus)"
fi

name="chorus-$$"
made=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # The experiment stops its peers itself, Ctrl-C included: anything still running on a host
    # now was left behind by it (and would be on real machines), so it fails the run.
    local leftover=0
    for ns in "${made[@]}"; do
        case "$ns" in *-h[0-9]*) leftover=$((leftover + $(ip netns pids "$ns" 2>/dev/null | wc -l))) ;; esac
    done
    if [ "$leftover" != 0 ] && [ "${runner_done:-0}" = 1 ]; then
        echo "netns-cluster.sh: the experiment left $leftover process(es) running on the hosts" >&2
        status=1
    fi
    for ns in "${made[@]}"; do
        # Anything still running in a namespace (a peer, the runner) goes first.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    done
    for ns in "${made[@]}"; do ip netns del "$ns" 2>/dev/null || true; done  # deleting a namespace deletes its links
    rm -rf "/tmp/$name-files"
    local left
    left="$(ip netns list | grep -c "^$name-" || true)"
    if [ "$left" != 0 ]; then echo "netns-cluster.sh: could not remove $left namespace(s) named $name-*" >&2; status=1; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

add_namespace() {
    ip netns add "$1"
    made+=("$1")
    ip -n "$1" link set lo up
}

add_namespace "$name-br"
ip -n "$name-br" link add br0 type bridge
ip -n "$name-br" link set br0 up
attach() {  # namespace, address: a veth pair from the namespace to the bridge
    local ns="$1" address="$2" port="b${#made[@]}"
    ip link add eth0 netns "$ns" type veth peer name "$port" netns "$name-br"
    ip -n "$name-br" link set "$port" master br0 up
    ip -n "$ns" addr add "$address/24" dev eth0
    ip -n "$ns" link set eth0 up
}
netns_args=()
hosts_file="/tmp/$name-files/hosts.toml"
if [ "$machines" = 1 ]; then
    mkdir -p "/tmp/$name-files"
    printf 'shell = "ip netns exec {host} sh -c {command}"\ndirectory = "/tmp/%s-files/{host}"\n' "$name" > "$hosts_file"
    netns_args=(--hosts "$hosts_file")
fi
for k in $(seq 1 "$hosts"); do
    add_namespace "$name-h$k"
    attach "$name-h$k" "10.213.0.$k"
    if [ "$machines" = 1 ]; then
        mkdir -p "/tmp/$name-files/$name-h$k"
        printf '\n[[host]]\nname = "%s"\naddress = "%s"\n' "$name-h$k" "10.213.0.$k" >> "$hosts_file"
    else
        netns_args+=(--netns "$name-h$k@10.213.0.$k")
    fi
done
add_namespace "$name-ctl"
attach "$name-ctl" "10.213.0.254"
echo "netns-cluster.sh: $hosts hosts 10.213.0.1-$hosts on a bridge (namespaces $name-*)" >&2

set +e
ip netns exec "$name-ctl" "$chorus" experiment "${netns_args[@]}" "$@" &
runner=$!
trap 'kill -INT $runner 2>/dev/null' INT TERM  # the runner stops its peers and writes its files
wait "$runner"; status=$?
[ "$status" -gt 128 ] && { wait "$runner"; status=$?; }  # woken by a signal: wait for the runner to finish
runner_done=1
sleep 0.5  # a peer's last exit, after the runner's
set -e
exit "$status"
