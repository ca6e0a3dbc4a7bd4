#!/usr/bin/env bash
# Crash detection of Chorus and hashicorp/memberlist side by side on this machine, one process
# per node, crashes after leave-and-join cycles (docs/membership.md, "Side by side with
# memberlist"). Installs Debian's golang-go and golang-github-hashicorp-memberlist-dev when
# missing (as root), builds both, and runs scripts/memberlist-compare.py.
# Usage: scripts/memberlist-compare.sh OUT [--sizes 16,64,128] [--cycles 6] [--gap 4] [--seed 1]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh
[ $# -ge 1 ] || { sed -n '2,6p' "$0"; exit 2; }
out="$1"; shift
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
chorus="$(release_chorus)"
mkdir -p .build
echo "== building scripts/memberlist-node with memberlist $(dpkg-query -W -f='${Version}' golang-github-hashicorp-memberlist-dev 2>/dev/null) (Debian)" >&2
(cd scripts/memberlist-node && GOPATH=/usr/share/gocode GO111MODULE=off go build -o ../../.build/memberlist-node .)
ulimit -n 65536 2>/dev/null || true
exec python3 scripts/memberlist-compare.py --chorus "$chorus" --memberlist .build/memberlist-node --out "$out" "$@"
