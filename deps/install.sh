#!/usr/bin/env bash
# Installs what uvws needs on Debian 12 (run as root).
#
#   deps/install.sh          build dependencies only
#   deps/install.sh --test   build + test dependencies, then `npm ci` at the repo root
#
# Idempotent: when every Debian package is already installed, apt-get is not run at all.
# Works from any current directory.
set -euo pipefail

usage() {
  echo "usage: $0 [--test]" >&2
  echo "  (no option)  install the build dependencies" >&2
  echo "  --test       also install the test dependencies and run npm ci in the repo root" >&2
}

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument: $arg" >&2; usage; exit 2 ;;
  esac
done

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

build_pkgs=(build-essential cmake pkg-config ca-certificates libuv1-dev libmbedtls-dev node-llhttp
            zlib1g-dev libhiredis-dev libjansson-dev libcmocka-dev)
test_pkgs=(python3 python3-websockets curl clang libclang-rt-14-dev chromium fonts-liberation redis-server nginx openssl git)

wanted=("${build_pkgs[@]}")
if [ "$with_tests" -eq 1 ]; then
  wanted+=("${test_pkgs[@]}")
  # This machine may carry a NodeSource nodejs that bundles npm; Debian's npm would conflict
  # with it, so Debian's nodejs + npm are only installed when there is no npm at all.
  if ! command -v npm >/dev/null 2>&1; then
    wanted+=(nodejs npm)
  fi
fi

# A package counts as installed when dpkg says "install ok installed".
is_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ]
}

missing=()
for p in "${wanted[@]}"; do
  if ! is_installed "$p"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install.sh: all ${#wanted[@]} Debian packages already installed; skipping apt-get"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing packages (${missing[*]}) and not root: run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "install.sh: apt-get update"
  apt-get update -qq
  echo "install.sh: apt-get install ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$with_tests" -eq 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install.sh: npm is still missing after the apt-get step" >&2
    exit 1
  fi
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$node_major" -lt 18 ]; then
    echo "install.sh: node $(node --version) is too old (need >= 18)" >&2
    exit 1
  fi
  # playwright-core never downloads browsers by itself; make sure nothing else does either.
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  cd "$repo_root"
  echo "install.sh: npm ci in $repo_root (node $(node --version), npm $(npm --version))"
  npm ci --no-audit --no-fund
  for bin in wscat; do
    if [ ! -x "node_modules/.bin/$bin" ]; then
      echo "install.sh: node_modules/.bin/$bin missing after npm ci" >&2
      exit 1
    fi
  done
fi

echo "install.sh: done"
