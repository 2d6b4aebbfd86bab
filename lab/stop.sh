#!/usr/bin/env bash
# Stop what the lab started, by the PIDs it recorded under $LAB_RUN/pids (never by name).
#
#   stop.sh            everything: the servers front to back, then any collector
#   stop.sh NAME...    only these (server names, or collector names of capture.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$LAB_DIR/lib.sh"

if [[ $# -eq 0 ]]; then
  for name in "${LAB_SERVERS[@]}"; do
    halt "$name" 20
  done
  for f in "$LAB_RUN"/pids/*.pid; do
    if [[ -e $f ]]; then
      halt "$(basename "$f" .pid)" 15
    fi
  done
else
  for arg in "$@"; do
    halt "$(lab_server "$arg" || echo "$arg")" 20
  done
fi
