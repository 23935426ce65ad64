#!/usr/bin/env bash
# The deploy pipeline's steps as plain shell, shared by the Jenkinsfile, the
# GitHub Actions example (.github/workflows/deploy.yml.example) and the e2e
# test (test/e2e/pipeline.test.ts), so all three run the same commands.
#
#   ci/pipeline.sh image            build and push the image (see README "Deploying from Jenkins")
#   ci/pipeline.sh plan  [ARGS…]    fleetx plan --detailed-exitcode: exit 0 no change, 2 changes, 1 error
#   ci/pipeline.sh deploy [ARGS…]   fleetx deploy with reports; exit codes as in docs/CLI.md
#
# ARGS go to fleetx as they are (e.g. --set unhealthy=true). Settings, all
# from the environment (the CI system's credentials end up here too):
#   FLEETX_SERVICE       service to plan/deploy (default web)
#   FLEETX_SERVICE_FILE  service file (default: the stored service, or services/$FLEETX_SERVICE.yaml)
#   FLEETX_TAG           what to deploy (default: GIT_COMMIT, first 12 characters)
#   FLEETX_TAG_VALUE     the service value the tag sets (default version)
#   FLEETX_REPORT_DIR    where plan and reports go (default build/fleetx)
#   FLEETX_BIN           the fleetx command (default: fleetx on PATH, else this checkout's bin/fleetx.mjs)
#   FLEETX_ENDPOINT, FLEETX_CA_FILE, FLEETX_CERT_FILE, FLEETX_KEY_FILE, FLEETX_ETCD_USERNAME,
#   FLEETX_ETCD_PASSWORD, FLEETX_TIMEOUT, FLEETX_WEBHOOK_URL, FLEETX_WEBHOOK_TOKEN_FILE: read by fleetx itself
#   FLEETX_REGISTRY, FLEETX_IMAGE, FLEETX_CONTAINERFILE, FLEETX_BUILD_CONTEXT,
#   FLEETX_REGISTRY_TLS_VERIFY (false for the sandbox registry, plain HTTP): the image step
set -euo pipefail

step=${1:?usage: ci/pipeline.sh image|plan|deploy [fleetx args…]}
shift

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
service=${FLEETX_SERVICE:-web}
tag=${FLEETX_TAG:-${GIT_COMMIT:-}}
tag=${tag:0:12}
reports=${FLEETX_REPORT_DIR:-build/fleetx}
export CI=${CI:-true}

if [[ -n ${FLEETX_BIN:-} ]]; then
  fleetx=("$FLEETX_BIN")
elif command -v fleetx >/dev/null; then
  fleetx=(fleetx)
else
  fleetx=(node "$here/bin/fleetx.mjs")
fi

# what to deploy: the service file or the stored service, the tag as a value
target=()
if [[ -n ${FLEETX_SERVICE_FILE:-} ]]; then target=(-f "$FLEETX_SERVICE_FILE"); else target=("$service"); fi
values=()
if [[ -n $tag ]]; then values=(--set "${FLEETX_TAG_VALUE:-version}=$tag"); fi

mkdir -p "$reports"

case $step in
  image)
    # Build with podman (or docker) and push to the team's registry; the
    # sandbox registry stands in for it in tests. Skipped, saying so, when
    # no registry is configured.
    if [[ -z ${FLEETX_REGISTRY:-} ]]; then
      echo "image: FLEETX_REGISTRY is not set; no image built (see README: Deploying from Jenkins)"
      exit 0
    fi
    [[ -n $tag ]] || { echo "image: no tag (set FLEETX_TAG or GIT_COMMIT)" >&2; exit 2; }
    engine=$(command -v podman || command -v docker) || { echo "image: neither podman nor docker is installed" >&2; exit 1; }
    ref="$FLEETX_REGISTRY/${FLEETX_IMAGE:-$service}:$tag"
    "$engine" build -f "${FLEETX_CONTAINERFILE:-Containerfile}" -t "$ref" "${FLEETX_BUILD_CONTEXT:-.}"
    if [[ ${FLEETX_REGISTRY_TLS_VERIFY:-true} == false && $engine == */podman ]]; then
      "$engine" push --tls-verify=false "$ref"
    else
      "$engine" push "$ref"
    fi
    echo "image: pushed $ref"
    ;;
  plan)
    # exit 0: nothing would change; 2: changes (not a failure); 1: error
    rc=0
    "${fleetx[@]}" plan --detailed-exitcode "${target[@]}" "${values[@]}" "$@" > "$reports/plan.txt" || rc=$?
    cat "$reports/plan.txt"
    if [[ $rc -le 2 ]]; then "${fleetx[@]}" -o json plan "${target[@]}" "${values[@]}" "$@" > "$reports/plan.json" || true; fi
    exit "$rc"
    ;;
  deploy)
    # exec: fleetx itself gets the SIGTERM Jenkins sends when the build is
    # aborted, and acts on --on-abort (default abort) before exiting.
    exec "${fleetx[@]}" deploy "${target[@]}" "${values[@]}" \
      --report "$reports/fleetx-report.json" --report "$reports/fleetx-junit.xml" "$@"
    ;;
  *)
    echo "unknown step $step: use image, plan or deploy" >&2
    exit 2
    ;;
esac
