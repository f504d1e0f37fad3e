#!/usr/bin/env bash
# The checks of deploy/kind/e2e.sh run against the podman lab (node dist/deploy/lab/main.js up):
# same check library, `lab exec` as the runner. Checks that need kube-proxy, CoreDNS or an image with
# iperf3 are listed as skipped. Usage: lab-checks.sh [--name LAB]
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=deploy/kind/checks.sh
source deploy/kind/checks.sh
WEFT_RUNNER=lab
if [[ ${1:-} == --name ]]; then LAB_NAME=${2:?}; fi

web_ip=$(pod_ip n2-web)
check "ping n2-web ($web_ip) from n1-sh, another node" ping_pod n1-sh "$web_ip"
check "wget n2-web across nodes" http_get n1-sh "http://$web_ip/" "hello from n2-web"
if [[ -n $(pod_ip n3-web 2>/dev/null) ]]; then
  check "wget n3-web from n1-sh" http_get n1-sh "http://$(pod_ip n3-web)/" "hello from n3-web"
fi
skip "Service by name" "the lab has no kube-proxy or CoreDNS"
skip "nslookup" "the lab has no CoreDNS"
skip "iperf3" "the lab image is busybox (lab bench measures throughput)"

checks_summary
