#!/usr/bin/env bash
# Installs everything fleetx, its tests and its sandbox need on a fresh
# Debian 12 machine (as root), then the npm dependencies. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  etcd-server etcd-client   # the registry, and etcdctl for the test harness
  systemd systemd-container # systemd-analyze verify; systemd-nspawn for test hosts
  dbus                      # the system bus systemd is driven through
  haproxy                   # the load balancer of the sandbox demo
  iproute2 openssl          # bridges for test hosts; TLS material in tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps apt from starting etcd/haproxy on the machine itself
  # (a systemd machine would); fleetx starts its own, on its own addresses.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
