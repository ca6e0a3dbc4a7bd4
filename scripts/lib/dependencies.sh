# Shared by scripts/test.sh and scripts/demo.sh: make sure the system dependency is present.
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
