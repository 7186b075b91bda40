#!/usr/bin/env bash
# The demo: the API (and, as they land, the simulators, collectors and ingest workers)
# running in the background against the local services. `start` is idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${MHUB_RUN_DIR:-$root/.run}
mhub="$root/.venv/bin/meterhub"
host=${MHUB_API_HOST:-127.0.0.1}
port=${MHUB_API_PORT:-8000}
pidfile="$run_dir/demo/api.pid"
logfile="$run_dir/demo/api.log"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

port_taken() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

start() {
  mkdir -p "$run_dir/demo"
  if running; then
    echo "demo: API already running (pid $(cat "$pidfile"))"
  else
    if port_taken; then
      echo "demo: port $port is already in use by another program; set MHUB_API_PORT to another port" >&2
      exit 1
    fi
    nohup "$mhub" serve --host "$host" --port "$port" >"$logfile" 2>&1 &
    echo $! >"$pidfile"
  fi
  for _ in $(seq 1 100); do
    if "$root/.venv/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://$host:$port/readyz" 2>/dev/null; then
      cat <<MSG
demo: meterhub is up
  API         http://$host:$port/          (log: $logfile)
  OpenAPI UI  http://$host:$port/docs
  health      http://$host:$port/livez  http://$host:$port/readyz
  metrics     http://$host:$port/metrics
  stop with   make stop
MSG
      return 0
    fi
    running || { echo "demo: the API exited; its log:" >&2; tail -n 40 "$logfile" >&2; exit 1; }
    sleep 0.2
  done
  echo "demo: the API did not become ready in 20 s; its log:" >&2
  tail -n 40 "$logfile" >&2
  exit 1
}

stop() {
  if running; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 50); do running || break; sleep 0.1; done
    echo "demo: API stopped"
  fi
  rm -f "$pidfile"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: deploy/demo.sh start|stop" >&2; exit 2 ;;
esac
