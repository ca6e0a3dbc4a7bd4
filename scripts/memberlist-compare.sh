#!/usr/bin/env bash
# Crash detection of Chorus and hashicorp/memberlist side by side on this machine, one process
# per node, crashes after leave-and-join cycles (docs/membership.md, "Side by side with
# memberlist"). Installs Debian's golang-go and golang-github-hashicorp-memberlist-dev when
# missing (as root), builds both, and runs scripts/memberlist-compare.py. --traffic SECONDS
# measures bytes and datagrams sent per member per second over a quiet window instead of crashes
# (memberlist, memberlist-encrypted, chorus-session-keys, chorus-no-session-keys; OUT/traffic.csv).
# --chorus BIN uses that chorus binary (a release build) instead of building one.
# Usage: scripts/memberlist-compare.sh OUT [--sizes 16,64,128] [--cycles 6] [--gap 4] [--seed 1]
#        [--traffic SECONDS [--settle 60]] [--systems memberlist,chorus,…] [--chorus BIN]
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }
out="$1"; shift
chorus=""
rest=()
while [ $# -gt 0 ]; do
    case "$1" in
        --chorus) [ $# -ge 2 ] || { echo "--chorus: missing BIN" >&2; exit 2; }; chorus="$2"; shift 2 ;;
        --chorus=*) chorus="${1#--chorus=}"; shift ;;
        *) rest+=("$1"); shift ;;
    esac
done
go_source=/usr/share/gocode/src/github.com/hashicorp/memberlist
if ! command -v go >/dev/null 2>&1 || [ ! -d "$go_source" ]; then
    packages="golang-go golang-github-hashicorp-memberlist-dev"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing $packages (apt-get)…" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
    else
        echo "missing: $packages. Install them first: sudo apt-get install -y $packages" >&2
        exit 1
    fi
fi
if [ -z "$chorus" ]; then
    chorus="$(release_chorus)"
else
    case "$chorus" in /*) ;; *) chorus="$caller/$chorus" ;; esac
fi
if [ ! -x "$chorus" ]; then
    echo "--chorus $chorus: not an executable" >&2
    exit 2
fi
mkdir -p .build
echo "== building scripts/memberlist-node with memberlist $(dpkg-query -W -f='${Version}' golang-github-hashicorp-memberlist-dev 2>/dev/null) (Debian)" >&2
(cd scripts/memberlist-node && GOPATH=/usr/share/gocode GO111MODULE=off go build -o ../../.build/memberlist-node .)
ulimit -n 65536 2>/dev/null || true
exec python3 scripts/memberlist-compare.py --chorus "$chorus" --memberlist .build/memberlist-node --out "$out" ${rest[@]+"${rest[@]}"}
