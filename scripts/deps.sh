#!/usr/bin/env bash
# Installs what punchgate needs to build and test, from Debian 12 packages (and npm for the
# js-libp2p interop peer). Idempotent: apt-get runs only when a package is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev libsodium-dev libuv1-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libprotozero-dev
  libminiupnpc-dev libnatpmp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 iproute2 nftables procps systemd util-linux miniupnpd-nftables
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node.js >= 20 runs the js-libp2p interop peer (only needed for tests).
if [ "${1:-}" = "--with-node" ]; then
  if ! command -v node >/dev/null 2>&1; then
    echo "deps: installing nodejs npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  fi
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "deps: node $(node --version) is too old for js-libp2p 3.x; need >= 20" >&2
    exit 1
  fi
fi
