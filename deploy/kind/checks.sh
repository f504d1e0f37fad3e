#!/usr/bin/env bash
# weft's end-to-end checks as a library: sourced by deploy/kind/e2e.sh (kind, pods via kubectl) and by
# deploy/kind/lab-checks.sh (the podman lab, pods via `lab exec`). The checks are the same commands
# run inside pods; only the runner differs:
#   WEFT_RUNNER=kubectl   kubectl exec POD -- CMD...        (KUBECTL may name the kubectl to use)
#   WEFT_RUNNER=lab       node dist/deploy/lab/main.js exec POD -- CMD...   (LAB_NAME: --name; LAB_CLI: the script)
# Checks print one line each and are tallied; checks_summary prints the table and fails if any failed.

WEFT_RUNNER=${WEFT_RUNNER:-kubectl}
KUBECTL=${KUBECTL:-kubectl}
LAB_NAME=${LAB_NAME:-lab}
LAB_CLI=${LAB_CLI:-dist/deploy/lab/main.js}
declare -a CHECK_RESULTS=()
CHECK_FAILED=0

# pod_exec POD CMD...: runs CMD in POD with the configured runner (kubectl: NAMESPACE/POD allowed).
pod_exec() {
  local pod=$1
  shift
  case $WEFT_RUNNER in
    kubectl)
      if [[ $pod == */* ]]; then
        "$KUBECTL" exec -n "${pod%%/*}" "${pod#*/}" -- "$@"
      else
        "$KUBECTL" exec "$pod" -- "$@"
      fi
      ;;
    lab) node "$LAB_CLI" exec --name "$LAB_NAME" "$pod" -- "$@" ;;
    *) echo "unknown WEFT_RUNNER=$WEFT_RUNNER (kubectl or lab)" >&2; return 2 ;;
  esac
}

# pod_ip POD: the pod's IPv4 address on eth0, asked of the pod itself (works with either runner).
pod_ip() {
  pod_exec "$1" ip -4 -o addr show dev eth0 | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p' | head -n 1
}

# check NAME CMD...: runs CMD (a function or command), records PASS or FAIL with its last output line.
check() {
  local name=$1
  shift
  local output status
  output=$("$@" 2>&1) && status=0 || status=$?
  if ((status == 0)); then
    CHECK_RESULTS+=("PASS  $name")
    printf 'PASS  %s\n' "$name"
  else
    CHECK_FAILED=$((CHECK_FAILED + 1))
    CHECK_RESULTS+=("FAIL  $name: $(printf '%s' "$output" | tail -n 1)")
    printf 'FAIL  %s (exit %d)\n%s\n' "$name" "$status" "$output" | sed 's/^/      /;1s/^      //'
  fi
}

# skip NAME WHY: a check that does not apply to this runner.
skip() {
  CHECK_RESULTS+=("SKIP  $1: $2")
  printf 'SKIP  %s: %s\n' "$1" "$2"
}

# ---- the checks (each returns non-zero on failure) -----------------------------------------------------

# ping_pod FROM_POD TO_IP
ping_pod() { pod_exec "$1" ping -c 3 -W 2 "$2"; }

# http_get FROM_POD URL EXPECTED_TEXT: busybox wget under timeout (its -T segfaults on Debian's build).
http_get() {
  local body
  body=$(pod_exec "$1" timeout 10 wget -q -O- "$2") || return 1
  printf '%s\n' "$body"
  grep -q -- "$3" <<<"$body"
}

# resolve FROM_POD NAME: the cluster DNS answers for NAME.
resolve() { pod_exec "$1" nslookup "$2"; }

# iperf FROM_POD SERVER_IP: a 5 s TCP run; prints the receiver's rate.
iperf() { pod_exec "$1" iperf3 -c "$2" -t 5 -f m | grep -E 'receiver'; }

# agent_status AGENT_POD: the agent answers `agent status` and knows its peers.
agent_status() {
  local out
  out=$(pod_exec "$1" agent status) || return 1
  printf '%s\n' "$out"
  grep -qi 'peer' <<<"$out"
}

checks_summary() {
  printf '\n== summary (%s runner)\n' "$WEFT_RUNNER"
  printf '%s\n' "${CHECK_RESULTS[@]}"
  local passed
  passed=$(printf '%s\n' "${CHECK_RESULTS[@]}" | grep -c '^PASS' || true)
  printf '%d passed, %d failed\n' "$passed" "$CHECK_FAILED"
  ((CHECK_FAILED == 0))
}
