#!/bin/sh
# install-deps.sh — installs everything sluice needs to build, test and
# benchmark on Debian 12 (bookworm).  Run as root (or with sudo on PATH).
#
# Idempotent: when every package is already installed it does nothing and
# returns at once, without touching the network.  Non-interactive.
set -eu

PACKAGES="
	build-essential
	meson
	ninja-build
	pkg-config
	cmake
	python3
	libnng-dev
	nng-utils
	libprotobuf-c-dev
	protobuf-c-compiler
	libcmocka-dev
	valgrind
	golang-go
	clang
	libclang-rt-14-dev
	libyaml-dev
	util-linux
	gcc-aarch64-linux-gnu
	libc6-dev-arm64-cross
	qemu-user
	openssl
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is wanted
$SUDO apt-get install -y -q --no-install-recommends $missing
echo "install-deps: done"
