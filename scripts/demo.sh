#!/usr/bin/env bash
# The main job (README, command 1), as root on a fresh Debian 12:
#   1. ./scripts/setup.sh                          packages + npm ci (skip with FLEETX_SKIP_SETUP=1)
#   2. node bin/fleetx.mjs sandbox up --demo       3 systemd container hosts, etcd, image registry, HAProxy + presence syncer, app deployed
#   3. demo/job.ts                                 HTTP load through HAProxy during `fleetx rolling-restart app@`
# Exits non-zero if a request failed or the rolling restart did. Leaves the
# sandbox up; `node bin/fleetx.mjs sandbox down` removes it. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: run as root (the sandbox makes a bridge and boots systemd hosts)" >&2
  exit 2
fi
if [ "${FLEETX_SKIP_SETUP:-0}" != 1 ]; then
  ./scripts/setup.sh
fi
node bin/fleetx.mjs sandbox up --demo --hosts 3
node --import tsx demo/job.ts
