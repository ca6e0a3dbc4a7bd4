#!/usr/bin/env bash
# Checks scripts/install.sh: installs into a temporary prefix (and once more through --destdir)
# and verifies that each file is there and usable: the binary runs, the man page renders, the
# completion scripts parse, and the systemd unit passes `systemd-analyze verify` when available.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "test-install: $*" >&2; exit 1; }

prefix="$work/prefix"
scripts/install.sh --prefix "$prefix" > "$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "install.sh failed"; }
for file in bin/chorus share/man/man1/chorus.1 share/bash-completion/completions/chorus share/zsh/site-functions/_chorus \
            share/fish/vendor_completions.d/chorus.fish lib/systemd/system/chorus-peer@.service \
            share/doc/chorus/README.md share/doc/chorus/LICENSE share/doc/chorus/CHANGELOG.md \
            share/doc/chorus/docs/protocol.md share/doc/chorus/Peers/README.md; do
    [ -s "$prefix/$file" ] || fail "missing or empty: $prefix/$file"
done
"$prefix/bin/chorus" --version | grep -q "^chorus [0-9]" || fail "the installed binary does not print its version"
grep -q "^\.Dt CHORUS 1" "$prefix/share/man/man1/chorus.1" || fail "chorus.1 is not a section-1 man page"
for verb in peer validate leave experiment; do
    grep -q "^\.It Em $verb" "$prefix/share/man/man1/chorus.1" || fail "chorus.1 does not describe 'chorus $verb'"
done
if command -v man >/dev/null 2>&1; then
    man -l "$prefix/share/man/man1/chorus.1" 2>/dev/null | grep -q "chorus" || fail "man cannot render chorus.1"
fi
bash -n "$prefix/share/bash-completion/completions/chorus" || fail "the bash completion script does not parse"
bash -c ". '$prefix/share/bash-completion/completions/chorus' && complete -p chorus" >/dev/null || fail "sourcing the bash completion registers nothing"
unit="$prefix/lib/systemd/system/chorus-peer@.service"
grep -q "^ExecStart=$prefix/bin/chorus peer" "$unit" || fail "the unit does not start the installed binary"
grep -q "^Documentation=man:chorus(1) file://$prefix/share/doc/chorus/" "$unit" || fail "the unit's Documentation= does not point at what was installed"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit is a template: verify an instance of it, from a copy named for one.
    mkdir -p "$work/units" && cp "$unit" "$work/units/chorus-peer@.service"
    # --man=no: the man page is in a temporary prefix that man does not search (checked above).
    if ! out=$(systemd-analyze verify --man=no "$work/units/chorus-peer@test.service" 2>&1); then
        echo "$out" >&2; fail "systemd-analyze verify rejects the unit"
    fi
    echo "$out" | grep -q "chorus-peer@" && { echo "$out" >&2; fail "systemd-analyze verify warns about the unit"; }
fi
# Packagers stage under --destdir; what is written still names the prefix.
scripts/install.sh --prefix /opt/chorus --destdir "$work/stage" > "$work/stage.log" 2>&1 || { cat "$work/stage.log" >&2; fail "install.sh --destdir failed"; }
grep -q "^ExecStart=/opt/chorus/bin/chorus peer" "$work/stage/opt/chorus/lib/systemd/system/chorus-peer@.service" || fail "--destdir leaked into the unit"
[ ! -e /opt/chorus ] || [ -e "$work/stage/opt/chorus/bin/chorus" ] || fail "--destdir wrote outside the stage"
echo "install.sh: binary, man page, completions, unit and docs in place (unit verified: $(command -v systemd-analyze >/dev/null && echo yes || echo 'no systemd-analyze'))"
