# Shared by the scripts: make sure the system dependency is present, and build the release binary.
# libsodium-dev (headers + pkg-config file) and pkg-config itself; installs them with apt-get when
# running as root, otherwise prints the exact command and fails.

ensure_libsodium() {
    if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libsodium; then
        return 0
    fi
    local packages="libsodium-dev pkg-config"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "chorus: installing $packages (apt-get)…" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
        pkg-config --exists libsodium && return 0
        echo "chorus: apt-get finished but pkg-config still cannot find libsodium" >&2
        return 1
    fi
    echo "chorus: libsodium-dev is missing. Install it first:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y $packages" >&2
    return 1
}

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        echo "chorus: the Swift toolchain (6.1 or later) is not on PATH; see https://www.swift.org/install/" >&2
        return 1
    fi
}

# Checks Swift and libsodium, builds the release binary (progress on stderr) and prints its path.
# Each step is checked here: `chorus="$(release_chorus)"` runs it in a subshell without `set -e`.
release_chorus() {
    ensure_swift || return 1
    ensure_libsodium || return 1
    swift build -c release >&2 || return 1
    local bin
    bin="$(swift build -c release --show-bin-path)" || return 1
    echo "$bin/chorus"
}
