#!/usr/bin/env bash
# Safety net after a test run (CI calls it on exit): removes what an
# interrupted test may have left behind. Tests clean up after themselves;
# this only matches their naming conventions:
#   test hosts and sandboxes  /var/tmp/fleetx-test-*   bridges fxt*
#   test etcd data dirs        $TMPDIR/fleetx-etcd-*
# It never touches the default sandbox (/var/lib/fleetx/sandbox).
set -u
tmp=${TMPDIR:-/tmp}

pids=$(ps -eo pid=,args= | awk -v t="$tmp/fleetx-etcd-" '$0 ~ "/var/tmp/fleetx-test-" || index($0, t) { print $1 }')
if [ -n "$pids" ]; then
  kill -TERM $pids 2>/dev/null || true
  sleep 2
  kill -KILL $pids 2>/dev/null || true
fi

# innermost mounts first
findmnt -rn -o TARGET | grep '^/var/tmp/fleetx-test-' | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
done

for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^fxt' || true); do
  ip link delete "$link" 2>/dev/null || true
done

rm -rf /var/tmp/fleetx-test-* "$tmp"/fleetx-etcd-* 2>/dev/null || true
exit 0
