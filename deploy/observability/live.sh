#!/usr/bin/env bash
# Starts the local stack (bin/moviebag-local, fresh data dir), waits for the gateway, runs TestLivePrometheus
# against it, and stops the stack however the test ends. Called by `make test-observability`.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${GO:=go}"
: "${GATEWAY_ADDR:=127.0.0.1:8080}"
: "${AUTH_ADDR:=127.0.0.1:8081}"
: "${AUTH_ADMIN_ADDR:=127.0.0.1:9091}"
: "${MOVIES_ADDR:=127.0.0.1:8082}"
: "${MOVIES_ADMIN_ADDR:=127.0.0.1:9092}"
export GATEWAY_ADDR AUTH_ADDR AUTH_ADMIN_ADDR MOVIES_ADDR MOVIES_ADMIN_ADDR

stack=bin/moviebag-local
[[ -x $stack ]] || { echo "live.sh: $stack is missing (make test-observability builds it)" >&2; exit 1; }

# Refuse to test someone else's stack: every port must be free.
for addr in "$GATEWAY_ADDR" "$AUTH_ADDR" "$AUTH_ADMIN_ADDR" "$MOVIES_ADDR" "$MOVIES_ADMIN_ADDR"; do
  if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
    echo "live.sh: something already listens on $addr (a 'make run' stack?): stop it, or set GATEWAY_ADDR, AUTH_ADDR, AUTH_ADMIN_ADDR, MOVIES_ADDR, MOVIES_ADMIN_ADDR" >&2
    exit 1
  fi
done

work=$(mktemp -d -t moviebag-observability.XXXXXX)
log=$work/stack.log
pid=
cleanup() {
  local rc=$?
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  if ((rc != 0)); then echo "--- stack log (last 60 lines of $log)"; tail -n 60 "$log" || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# setsid: the stack and its children (redis-server) form one process group, stopped together.
DATA_DIR=$work/data setsid "$stack" >"$log" 2>&1 &
pid=$!

echo "waiting for the stack on http://$GATEWAY_ADDR (log: $log)"
for i in $(seq 240); do
  kill -0 "$pid" 2>/dev/null || { echo "live.sh: the stack exited during startup" >&2; exit 1; }
  if curl -fsS -o /dev/null "http://$GATEWAY_ADDR/api/movies" 2>/dev/null; then break; fi
  ((i < 240)) || { echo "live.sh: the gateway did not answer within 120s" >&2; exit 1; }
  sleep 0.5
done

cd deploy/observability
MOVIEBAG_GATEWAY_URL="http://$GATEWAY_ADDR" \
MOVIEBAG_PROM_TARGETS="auth=$AUTH_ADMIN_ADDR,movies=$MOVIES_ADMIN_ADDR" \
GOWORK=off "$GO" test -count=1 -timeout 10m -run '^TestLivePrometheus$' -v ./...
