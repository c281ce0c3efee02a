#!/bin/sh
# Installs the Debian 12 packages topicfs needs to build, test and run,
# skipping those already present. Runs as root (or through sudo).
set -eu
PKGS="gcc meson ninja-build pkg-config libfuse3-dev fuse3 liblz4-dev libxxhash-dev \
libcmocka-dev libzookeeper-mt-dev python3 procps coreutils less jq nginx rsyslog bsdutils \
util-linux clang libfuzzer-14-dev libclang-rt-14-dev inotify-tools strace rsync tar \
libsodium-dev zookeeperd"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing:$missing"
    $SUDO apt-get update -qq
    # nginx and rsyslog are for the tests of examples/, which run them by
    # hand: keep their packages from starting system services (policy-rc.d,
    # Debian's switch for that), unless the machine already has a policy.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
        $SUDO chmod +x $policy
        own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null || {
        [ $own_policy = 0 ] || $SUDO rm -f $policy
        exit 1
    }
    [ $own_policy = 0 ] || $SUDO rm -f $policy
fi
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing: FUSE cannot mount here" >&2; exit 1; }
