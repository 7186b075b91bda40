#!/usr/bin/env bash
# The demo, meterhub's main job on one machine: a simulated city of 300 firms (Modbus meters,
# DL/T 645 meters behind RS-485 gateways, MQTT gateways, the grid company's feed) with two
# years of monthly history and output figures (the older year as rollups, the last year of
# electricity as the grid company's export of quarter-hour readings, imported and derived),
# the last eight weeks through the protocol paths, the weekly analytics run for those weeks,
# then the API with its interval worker, the MQTT ingest worker and the poll scheduler,
# live, all against the local services. `start` is idempotent (a second run reuses the city
# and its history); `stop` ends what it started. MHUB_DEMO_FIRMS, MHUB_DEMO_WEEKS,
# MHUB_DEMO_HISTORY_MONTHS, MHUB_DEMO_GRID_MONTHS and MHUB_DEMO_DIR change the size, the
# weeks through the protocol paths, the months of history before them, how many of those
# months come as imported readings and where the demo keeps its files (default .run/demo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${MHUB_RUN_DIR:-$root/.run}
demo=${MHUB_DEMO_DIR:-$run_dir/demo}
mhub="$root/.venv/bin/meterhub"
py="$root/.venv/bin/python"
host=${MHUB_API_HOST:-127.0.0.1}
port=${MHUB_API_PORT:-8000}
api="http://$host:$port"
firms=${MHUB_DEMO_FIRMS:-300}
weeks=${MHUB_DEMO_WEEKS:-8}
months=${MHUB_DEMO_HISTORY_MONTHS:-24}
grid_months=${MHUB_DEMO_GRID_MONTHS:-12}

say() { printf 'demo: %s\n' "$*"; }
running() { [ -f "$demo/$1.pid" ] && kill -0 "$(cat "$demo/$1.pid")" 2>/dev/null; }

start_bg() {  # name, command...: start in the background unless already running
  local name=$1
  shift
  if running "$name"; then
    say "$name already running (pid $(cat "$demo/$name.pid"))"
    return
  fi
  # Each meterhub process picks its own spool, .run/spool-<process>.
  nohup "$@" >"$demo/$name.log" 2>&1 &
  echo $! >"$demo/$name.pid"
  say "started $name (pid $!, log $demo/$name.log)"
}

answers() {  # url: true when it answers 200
  "$py" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" \
    2>/dev/null
}

stop_one() {  # name: SIGTERM, then SIGKILL after 10 s
  running "$1" || return 0
  kill -TERM "$(cat "$demo/$1.pid")"
  for _ in $(seq 1 100); do running "$1" || return 0; sleep 0.1; done
  kill -KILL "$(cat "$demo/$1.pid")"
}

wait_ready() {  # the API process is up (the collectors' readiness comes later)
  for _ in $(seq 1 150); do
    if answers "$api/livez"; then
      return 0
    fi
    running api || { say "the API exited; its log:" >&2; tail -n 40 "$demo/api.log" >&2; exit 1; }
    sleep 0.2
  done
  say "the API did not become ready in 30 s; its log:" >&2
  tail -n 40 "$demo/api.log" >&2
  exit 1
}

port_taken() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

timed() {  # what, command...: run it and note how long it took in $demo/timings
  local what=$1 t0=$SECONDS
  shift
  "$@"
  printf '%s %ss\n' "$what" "$((SECONDS - t0))" >>"$demo/timings"
}

city_start() {  # the city's start (a Monday midnight) as written in its file
  sed -n '0,/^start = /s/^start = //p' "$demo/city.toml"
}

monday_weeks_ago() {  # n: the Monday n weeks before this week's (local time)
  local dow
  dow=$(TZ=Asia/Shanghai date +%u)
  TZ=Asia/Shanghai date -d "-$((dow - 1)) days -$1 weeks" +%F
}

start() {
  mkdir -p "$demo"
  if ! running api && port_taken; then
    say "port $port is already in use by another program; set MHUB_API_PORT to another port" >&2
    exit 1
  fi
  if [ ! -f "$demo/city.toml" ]; then
    "$mhub" simulate city --firms "$firms" --seed 7 --industries seed \
      --start "$(monday_weeks_ago "$weeks")T00:00:00+08:00" \
      --history-months "$((months + 1))" --plant --out "$demo/city.toml"
  fi
  if [ ! -f "$demo/grid.key" ]; then
    "$mhub" simulate register "$demo/city.toml" --poll-interval 60 --grid-key-out "$demo/grid.key"
  else
    "$mhub" simulate register "$demo/city.toml" --poll-interval 60
  fi
  if [ ! -f "$demo/bureau.key" ]; then
    "$mhub" keys create --role bureau --name "demo analyst" | tail -n 1 >"$demo/bureau.key"
    chmod 600 "$demo/bureau.key"
  fi
  if [ ! -f "$demo/town.key" ]; then
    "$mhub" keys create --role town --scope 苏溪 --name "demo 苏溪镇" | tail -n 1 >"$demo/town.key"
    chmod 600 "$demo/town.key"
  fi
  if [ ! -f "$demo/field.key" ]; then
    "$mhub" keys create --role field --name "demo field staff" | tail -n 1 >"$demo/field.key"
    chmod 600 "$demo/field.key"
  fi
  # While the past is fast-forwarded the API does not judge weeks on its own clock (it would
  # judge the last week before its data is in); it restarts with the clock once it is.
  MHUB_ALERTS_SCHEDULE=false start_bg api "$mhub" serve --host "$host" --port "$port"
  wait_ready
  start_bg ingest-mqtt "$mhub" ingest-mqtt --group demo
  local since first_week grid_from export="$demo/grid-history.csv.gz"
  since=$(city_start)
  # The grid company's export starts on the first of the month $grid_months months before
  # the city's start; the rollups of electricity end there (no day counted twice).
  grid_from="$(date -d "$(date -d "${since%%T*}" +%Y-%m-01) -$grid_months months" +%F)T00:00:00+08:00"
  if [ ! -f "$demo/history" ]; then
    say "writing $months months of history before $since (rollups and output figures;" \
      "electricity until $grid_from)"
    timed history "$mhub" simulate history "$demo/city.toml" --months "$months" --until "$since" \
      --readings-from "$grid_from"
    touch "$demo/history"
  fi
  if [ ! -f "$demo/grid-imported" ]; then
    if [ ! -f "$export" ]; then
      say "exporting the grid company's readings of the $grid_months months before $since"
      timed grid-export "$mhub" simulate export-history "$demo/city.toml" \
        --months "$grid_months" --until "$since" --out "$demo/grid-history.part.csv.gz"
      mv "$demo/grid-history.part.csv.gz" "$export"
    fi
    say "importing them through the grid path (meterhub import readings; the API derives)"
    timed grid-import "$mhub" import readings "$export" --source grid-export
    timed grid-derive "$mhub" simulate settle
    touch "$demo/grid-imported"
    rm -f "$export"
  fi
  if [ ! -f "$demo/backfilled" ]; then
    say "fast-forwarding since $since through the feed, MQTT and polling paths"
    timed backfill "$mhub" simulate backfill "$demo/city.toml" --since "$since" --api "$api" \
      --grid-key-file "$demo/grid.key" --mqtt --polled
    timed settle "$mhub" simulate settle
    touch "$demo/backfilled"
  fi
  first_week=$(monday_weeks_ago "$weeks")
  if [ ! -f "$demo/judged-$first_week" ]; then
    say "judging the $weeks weeks from $first_week (meterhub alerts run)"
    timed alerts "$mhub" alerts run --week "$(date -d "$first_week" +%G-W%V)" --weeks "$weeks" \
      >"$demo/alerts.log"
    say "issuing the weekly notices of those weeks (meterhub notices generate)"
    for n in $(seq "$weeks" -1 1); do
      "$mhub" notices generate --week "$(date -d "$(monday_weeks_ago "$n")" +%G-W%V)" \
        >>"$demo/notices.log"
    done
    touch "$demo/judged-$first_week"
  fi
  say "restarting the API with its weekly clock (Monday 08:00: the week's rules and notice)"
  stop_one api
  start_bg api "$mhub" serve --host "$host" --port "$port"
  wait_ready
  start_bg simulators "$mhub" simulate run "$demo/city.toml" --api "$api" \
    --grid-key-file "$demo/grid.key" --interval 60
  start_bg collector "$mhub" collect --name demo-collector
  local key ready=no last_week notice_week
  key=$(cat "$demo/bureau.key")
  last_week=$(monday_weeks_ago 1)
  notice_week=$(date -d "$last_week" +%G-W%V)
  for _ in $(seq 1 50); do
    if answers "$api/readyz"; then ready=yes; break; fi
    sleep 0.2
  done
  [ "$ready" = yes ] || say "warning: $api/readyz is not ready yet; it says why" >&2
  "$mhub" simulate findings --api "$api" --key-file "$demo/bureau.key" --week "$last_week" || true
  cat <<MSG

demo: meterhub is up — a simulated city of $firms firms, $months months of monthly history
      and output figures (the last $grid_months months of electricity imported as the grid
      company's quarter-hour readings), the last weeks since $since
      through the protocol paths, the weekly rules judged for $weeks weeks (log
      $demo/alerts.log), live readings every minute from its Modbus, DL/T 645 and MQTT
      gateways and the grid feed.
  dashboard     $api/              (log in with a key below; Chinese, with an English switch)
  API docs      $api/docs          (authorize with the bureau key below)
  health        $api/livez  $api/readyz   metrics $api/metrics
  this week     $(grep '期' "$demo/notices.log" 2>/dev/null | tail -n 1)
                $api/v1/notices/$notice_week/export?format=html   (and format=xlsx)
  keys          bureau $key
                town   $(cat "$demo/town.key")   (苏溪: its own firms and notice part)
                grid   $(cat "$demo/grid.key")   (pushes the grid feed)
                field  $(cat "$demo/field.key")   (firms, meters, terminal status)
  try           curl -H "X-API-Key: $key" "$api/v1/findings?week=$last_week&limit=20"
                curl -H "X-API-Key: $key" "$api/v1/findings?rule=two_high"
                curl -H "X-API-Key: $key" "$api/v1/trends/series?scope=city&breakdown=town&granularity=month&start=$(date -d "-$months months" +%Y-%m-01)&end=$(date +%Y-%m-01)"
                curl -H "X-API-Key: $key" "$api/v1/trends/top?by=consumption&limit=10&start=$(date -d '-7 days' +%F)&end=$(date +%F)"
                curl -H "X-API-Key: $key" "$api/v1/terminals?online=false"
  timings       $(cat "$demo/timings" 2>/dev/null | tr '\n' ' ')
  logs          $demo/*.log
  secrets       $run_dir/secrets/ (database and broker passwords; never printed here)
  stop with     make stop
MSG
}

stop() {
  for name in collector simulators ingest-mqtt api; do
    if running "$name"; then
      stop_one "$name"
      say "stopped $name"
    fi
    rm -f "$demo/$name.pid"
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: deploy/demo.sh start|stop" >&2; exit 2 ;;
esac
