#!/bin/sh
# Installs the Debian 12 packages topicfs needs to build, test and run,
# skipping those already present. Runs as root (or through sudo).
set -eu
PKGS="gcc meson ninja-build pkg-config libfuse3-dev fuse3 liblz4-dev libxxhash-dev \
libcmocka-dev libzookeeper-mt-dev python3 procps coreutils less"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing: FUSE cannot mount here" >&2; exit 1; }
