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
  openssh-server openssh-client # sshd in sandbox hosts; ssh for status/journal/ssh
  podman crun catatonit     # the container runtime of sandbox hosts (catatonit: --init)
  podman-docker             # /usr/bin/docker for units written for docker (units/app@ and the sidecars)
  docker-registry           # the sandbox's image registry (distribution 2.8) on the bridge
  cloud-init                # `cloud-init schema` checks rendered user-data; boots sandbox hosts from a seed
  ignition                  # ignition-validate checks the Ignition config of cloud-config/flatcar/ (no service)
  faketime iptables         # the fault matrix: one host's clock jumps (libfaketime), a host cut off etcd
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps apt from starting etcd/haproxy/sshd on the machine
  # itself (a systemd machine would; invoke-rc.d and deb-systemd-invoke both
  # obey it); fleetx starts its own, on its own addresses. The packages still
  # enable their services for the machine's next boot: see below.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# openssh-server is here for the sandbox's hosts, not to open the machine to
# SSH: when this script installed it, keep a systemd machine from starting
# sshd at its next boot (sandbox hosts enable ssh.service in their own layer).
# A machine that already had it keeps its own setting.
if [[ " ${missing[*]} " == *" openssh-server "* ]] && command -v systemctl >/dev/null; then
  systemctl disable ssh.service >/dev/null 2>&1 || true
fi
# Likewise docker-registry: the sandbox runs its own registry on its bridge
# address (src/sandbox/registry.ts), never the package's on the machine.
if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
  systemctl disable docker-registry.service >/dev/null 2>&1 || true
fi
# Likewise cloud-init is here to validate user-data and to run inside sandbox
# hosts, never on the machine itself: when this script installed it, disable
# its boot stages here (a host enables them in its own layer). ds-identify
# would also find no seed on the machine and keep it off; this does not rely on it.
if [[ " ${missing[*]} " == *" cloud-init "* ]] && command -v systemctl >/dev/null; then
  systemctl disable cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service >/dev/null 2>&1 || true
fi

npm ci --no-audit --no-fund
