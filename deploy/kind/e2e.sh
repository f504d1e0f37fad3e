#!/usr/bin/env bash
# weft on kind, end to end: create the cluster (1 control-plane + 2 workers, no default CNI), build and
# load the agent image, apply deploy/weft.yaml, wait for the DaemonSet and the nodes, then run the
# checks of deploy/kind/checks.sh with kubectl as the runner. Prints a pass/fail summary; deletes the
# cluster at the end unless --keep.
#
# Needs: kind, kubectl, and Docker (or --image-archive FILE from deploy/image/build.sh --archive).
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=weft # workloads.yaml pins pods to this cluster's node names
keep=false
archive=
image=localhost/weft-agent:dev

usage() {
  echo "usage: $0 [--keep] [--image-archive FILE]" >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --keep) keep=true; shift ;;
    --image-archive) archive=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
for tool in kind kubectl; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is not installed" >&2; exit 2; }
done

# shellcheck source=deploy/kind/checks.sh
source deploy/kind/checks.sh
WEFT_RUNNER=kubectl
KUBECTL=kubectl

cleanup() {
  if [[ $keep == true ]]; then
    echo "cluster kept: kind delete cluster --name $cluster"
  else
    kind delete cluster --name "$cluster" || true
  fi
}
step() { printf '\n== %s\n' "$*"; }

step "kind cluster $cluster"
kind create cluster --name "$cluster" --config deploy/kind/cluster.yaml --wait 0s
trap cleanup EXIT
kubectl config use-context "kind-$cluster" >/dev/null

step "image $image"
if [[ -n $archive ]]; then
  kind load image-archive "$archive" --name "$cluster"
else
  docker build -f deploy/Dockerfile -t "$image" .
  kind load docker-image "$image" --name "$cluster"
fi

step "weft"
kubectl apply -f deploy/weft.yaml
kubectl -n kube-system rollout status daemonset/weft --timeout=300s
kubectl wait --for=condition=Ready nodes --all --timeout=300s

step "workloads"
kubectl apply -f deploy/kind/workloads.yaml
kubectl wait --for=condition=Ready pod -l app.kubernetes.io/part-of=weft-e2e --timeout=300s
kubectl get pods -o wide

step "checks"
web_ip=$(pod_ip web)
iperf_ip=$(pod_ip iperf-server)
agent_pod=$(kubectl -n kube-system get pods -l app.kubernetes.io/name=weft -o jsonpath='{.items[0].metadata.name}')
check "ping web ($web_ip) from client-a, another worker" ping_pod client-a "$web_ip"
check "ping web ($web_ip) from client-b, the control plane" ping_pod client-b "$web_ip"
check "wget web pod across nodes" http_get client-a "http://$web_ip/" "hello from web"
check "Service by name through kube-proxy and CoreDNS" http_get client-a http://website/ "hello from web"
check "nslookup website.default.svc.cluster.local" resolve client-a website.default.svc.cluster.local
check "agent status in $agent_pod" agent_status "kube-system/$agent_pod"
check "iperf3 iperf-client -> iperf-server ($iperf_ip) across nodes" iperf iperf-client "$iperf_ip"

checks_summary
