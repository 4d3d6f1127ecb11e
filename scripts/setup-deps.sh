#!/usr/bin/env bash
# Installs, idempotently, every Debian package the tests, the demo and the benchmarks need.
# Safe to run again: packages already present are skipped without touching apt.
set -euo pipefail

PACKAGES=(
  mariadb-server mariadb-client
  keepalived
  iproute2 iputils-ping iptables procps psmisc
  sysbench wrk curl
  nginx-light haproxy
  netcat-openbsd
  systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-deps: missing packages ${missing[*]} and not root; install them or run as root" >&2
    exit 1
  fi
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Do not let package installation start services on this machine: tests start their own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# Rust components used by `make test`.
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
echo "setup-deps: ok"

# For scripts/check-deploy.sh (systemd units, Ansible role): a python3 that can make a
# virtualenv, into which that script installs ansible-core and ansible-lint from PyPI.
# systemd-analyze comes with systemd (above).
deploy_missing=()
for p in python3 python3-venv; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    deploy_missing+=("$p")
  fi
done
if [ ${#deploy_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-deps: missing packages ${deploy_missing[*]} and not root; install them or run as root" >&2
    exit 1
  fi
  echo "setup-deps: installing ${deploy_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${deploy_missing[@]}" >/dev/null
fi
echo "setup-deps: deploy checks ok"
