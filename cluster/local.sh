#!/usr/bin/env bash
# A Dask scheduler and N single-threaded worker processes on this machine, all bound to 127.0.0.1.
#
#   cluster/local.sh [N_WORKERS] [SCHEDULER_FILE]      # defaults: 2, ./dask-scheduler.json
#
# Prints the `cusweep run ... --scheduler tcp://127.0.0.1:PORT` line to use from another terminal, and
# stops the scheduler and every worker on Ctrl-C (or SIGTERM). Nothing listens beyond 127.0.0.1: the
# scheduler, the workers, their nannies and their HTTP servers (dashboard, /health) all bind the loopback
# interface. To use more than this machine, see cluster/README.md (SLURM, Kubernetes, SSH, TLS).
#
# Environment (all optional):
#   DASK=dask               the dask command (e.g. .venv/bin/dask)
#   PORT=0                  scheduler port (0: a free one)
#   DASHBOARD_PORT=0        scheduler dashboard port on 127.0.0.1 (0: a free one; printed below)
#   MEMORY=4GiB             memory limit per worker process (a few blocks of chunk_mb; see README)
#   WORKER_DIR=             directory for worker scratch space (default: dask's default)
set -euo pipefail

N_WORKERS=${1:-2}
SCHEDULER_FILE=${2:-$PWD/dask-scheduler.json}
DASK=${DASK:-dask}
PORT=${PORT:-0}
DASHBOARD_PORT=${DASHBOARD_PORT:-0}
MEMORY=${MEMORY:-4GiB}
HOST=127.0.0.1

case $N_WORKERS in
    '' | *[!0-9]* | 0) echo "local.sh: N_WORKERS must be a positive integer, got '$N_WORKERS'" >&2; exit 2 ;;
esac
command -v "$DASK" >/dev/null || { echo "local.sh: '$DASK' not found; install dask[distributed] or set DASK=" >&2; exit 2; }

pids=()
stopping=0
stop() {
    [ "$stopping" = 1 ] && return
    stopping=1
    trap - INT TERM EXIT
    echo "local.sh: stopping the workers and the scheduler" >&2
    # background jobs of a script ignore SIGINT: stop them explicitly, workers first
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f "$SCHEDULER_FILE"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

rm -f "$SCHEDULER_FILE"
"$DASK" scheduler --host "$HOST" --port "$PORT" --dashboard-address "$HOST:$DASHBOARD_PORT" \
    --scheduler-file "$SCHEDULER_FILE" &
pids+=($!)

for _ in $(seq 1 600); do
    [ -s "$SCHEDULER_FILE" ] && grep -q '"address"' "$SCHEDULER_FILE" && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "local.sh: the scheduler exited" >&2; exit 1; }
    sleep 0.1
done
[ -s "$SCHEDULER_FILE" ] || { echo "local.sh: no scheduler file after 60 s" >&2; exit 1; }
ADDRESS=$(sed -n 's/.*"address": *"\([^"]*\)".*/\1/p' "$SCHEDULER_FILE")
DASHBOARD=$(tr -d '\n ' <"$SCHEDULER_FILE" | sed -n 's/.*"dashboard":\([0-9]*\).*/\1/p')

# one nanny per worker process; --dashboard-address also binds each worker's HTTP server to 127.0.0.1
# (without it, a worker's HTTP server listens on all interfaces even with --host 127.0.0.1)
"$DASK" worker --scheduler-file "$SCHEDULER_FILE" --nworkers "$N_WORKERS" --nthreads 1 \
    --host "$HOST" --dashboard-address "$HOST:0" --memory-limit "$MEMORY" \
    ${WORKER_DIR:+--local-directory "$WORKER_DIR"} &
pids+=($!)

cat <<EOF
scheduler: $ADDRESS   ($N_WORKERS worker processes, 1 thread each; scheduler file $SCHEDULER_FILE)
dashboard: http://$HOST:${DASHBOARD:-?}/status
in another terminal:
  cusweep run SWEEP.toml --store STORE --scheduler $ADDRESS
Ctrl-C here stops the cluster.
EOF
wait
