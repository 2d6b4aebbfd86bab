#!/bin/bash
# Forward-path throughput (docs/performance.md, "Forwarding"):
#   single: loadgen -> receiver -> stdout to /dev/null | discard TCP sink | syslog-ng
#           (3 rounds each)
#   fleet:  loadgen -> receiver -> `loadbalance: round-robin` over 1, 2 and 4 syslog-ng
#           collectors (JSON parser, flow control), same corpus; first unthrottled, then
#           each collector held to a fixed capacity of THROTTLE messages/s (a destination
#           `throttle()` whose back-pressure reaches its network source through
#           flags(flow-control)), modelling Logstash-class collectors of fixed capacity.
#           Reports the end-to-end rate (until every record is written by a collector),
#           CPU per message of the receiver and of the collectors, and each one's share.
# Usage: scripts/forward-bench.sh [single|fleet|all]   (default all)
# Build first: cargo build --release -p dnstap-receiver -p loadgen
# Uses TCP ports 17000, 17001, 17110..17133, 17200..17203 and 17300..17399 on 127.0.0.1.
set -u
WHAT=${1:-all}
W="$(cd "$(dirname "$0")/.." && pwd)"
R=$W/target/release/dnstap_receiver
L=$W/target/release/loadgen
CAP="$W/lab/captures/unbound-tcp.fstrm"
COUNT=${COUNT:-2000000}
D="$(mktemp -d)"
trap 'rm -rf "$D"' EXIT
cat > $D/discard.py <<'EOPY'
import socket, sys, threading
port = int(sys.argv[1])
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(16)
def serve(c):
    buf = bytearray(1 << 20); n = 0
    while True:
        k = c.recv_into(buf)
        if k == 0: break
        n += k
    c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOPY
cat > $D/fwd.yaml <<EOC
forward-to:
  buffer-size: 8388608
EOC
cat > $D/sng.conf <<EOC
@version: 3.38
options { log-msg-size(1048576); stats-freq(0); };
source s_in { network(ip("127.0.0.1") port(17001) transport("tcp") flags(no-parse) log-msg-size(1048576) max-connections(16) log-iw-size(100000)); };
parser p_json { json-parser(prefix(".json.")); };
destination d_ok { file("$D/sng-ok.log" template("\${MESSAGE}\n")); };
log { source(s_in); parser(p_json); destination(d_ok); };
EOC
single() {
python3 $D/discard.py 17000 & DPID=$!
/usr/sbin/syslog-ng -F --no-caps -f $D/sng.conf -R $D/p -p $D/pid -c $D/ctl > $D/sng.err 2>&1 & SPID=$!
sleep 1
one() { # mode port
  local mode=$1 port=$2 args
  case $mode in
    stdout) args=(--format json) ;;
    discard) args=(-c $D/fwd.yaml -f 127.0.0.1:17000) ;;
    syslog-ng) args=(-c $D/fwd.yaml -f 127.0.0.1:17001); rm -f $D/sng-ok.log ;;
  esac
  $R -v -l 127.0.0.1 -p $port --threads 1 "${args[@]}" > /dev/null 2> $D/rx-$mode.err & local RP=$!
  sleep 0.5
  local out=$($L --tcp 127.0.0.1:$port --count $COUNT --json $CAP)
  local t0=$(date +%s.%N)
  kill -TERM $RP; wait $RP
  local t1=$(date +%s.%N)
  local secs=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  local rate=$(python3 -c "print(round($COUNT/($secs+$t1-$t0)))")
  local cnt=$(grep -o 'output-counters: .*' $D/rx-$mode.err | tail -1 | grep -o 'delivered=[0-9]* .*dropped=[0-9]*')
  echo "$mode loadgen_s=$secs drain_s=$(python3 -c "print(round($t1-$t0,3))") end_to_end_msgs_per_s=$rate $cnt"
}
for round in 1 2 3; do
  port=$((17100 + round * 10))
  one stdout $((port+1)); one discard $((port+2)); one syslog-ng $((port+3))
done
kill $DPID; kill $SPID; wait 2>/dev/null
}

# ---- fleet: round-robin over 1, 2, 4 collectors ----
FLEET_COUNT=${FLEET_COUNT:-1000000}
THROTTLE=${THROTTLE:-10000}
THROTTLED_COUNT=${THROTTLED_COUNT:-240000}
HZ=$(getconf CLK_TCK)
cat > $D/fleet.yaml <<EOC
forward-to:
  loadbalance: round-robin
  buffer-size: 8388608
EOC
sng_conf() { # name port extra-destination-options
  cat > $D/$1.conf <<EOC
@version: 3.38
options { log-msg-size(1048576); stats-freq(0); stats-level(1); };
source s_in { network(ip("127.0.0.1") port($2) transport("tcp") flags(no-parse) log-msg-size(1048576) max-connections(16) log-iw-size(20000)); };
parser p_json { json-parser(prefix(".json.")); };
destination d_ok { file("/dev/null" template("\${MESSAGE}\n") log-fifo-size(40000) $3); };
log { source(s_in); parser(p_json); destination(d_ok); flags(flow-control); };
EOC
}
written() { # name: messages its destination has written
  /usr/sbin/syslog-ng-ctl stats -c $D/$1.ctl 2>/dev/null |
    awk -F';' '$1 == "dst.file" && $2 ~ /^d_ok/ && $5 == "written" {s += $6} END {print s + 0}'
}
ticks() { awk '{print $14 + $15}' /proc/$1/stat 2>/dev/null || echo 0; }
fleet_run() { # n label destination-options count receiver-port
  local n=$1 label=$2 opts=$3 count=$4 rport=$5 hosts="" names=() pids=() i
  for ((i = 0; i < n; i++)); do
    local name=c$i
    rm -f $D/$name.persist $D/$name.ctl
    sng_conf $name $((17200 + i)) "$opts"
    /usr/sbin/syslog-ng -F --no-caps -f $D/$name.conf -R $D/$name.persist -p $D/$name.pid \
      -c $D/$name.ctl > $D/$name.err 2>&1 &
    pids+=($!); names+=($name)
    hosts="$hosts${hosts:+,}127.0.0.1:$((17200 + i))"
  done
  for ((i = 0; i < n; i++)); do
    for _ in $(seq 100); do
      (exec 3<>/dev/tcp/127.0.0.1/$((17200 + i))) 2>/dev/null && break
      sleep 0.05
    done
  done
  local base=0
  for nm in "${names[@]}"; do base=$((base + $(written $nm))); done
  $R -v -l 127.0.0.1 -p $rport --threads 1 -c $D/fleet.yaml -f "$hosts" > /dev/null \
    2> $D/rx-fleet.err & local RP=$!
  sleep 0.5
  local c0=0 p
  for p in "${pids[@]}"; do c0=$((c0 + $(ticks $p))); done
  local r0=$(ticks $RP) t0=$(date +%s.%N)
  $L --tcp 127.0.0.1:$rport --count $count --json $CAP > $D/lg.json 2> $D/lg.err
  local total=0 deadline=$((SECONDS + 600))
  while :; do
    total=0
    for nm in "${names[@]}"; do total=$((total + $(written $nm))); done
    total=$((total - base))
    [ $total -ge $count ] || [ $SECONDS -ge $deadline ] && break
    sleep 0.1
  done
  local t1=$(date +%s.%N) r1=$(ticks $RP) c1=0
  for p in "${pids[@]}"; do c1=$((c1 + $(ticks $p))); done
  local shares=""
  for nm in "${names[@]}"; do shares="$shares $(written $nm)"; done
  kill -TERM $RP; wait $RP
  kill -TERM "${pids[@]}"; wait "${pids[@]}" 2>/dev/null
  python3 - "$n" "$label" "$count" "$total" "$t0" "$t1" "$r0" "$r1" "$c0" "$c1" "$HZ" $shares <<'EOPY'
import sys
n, label, count, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0, t1 = float(sys.argv[5]), float(sys.argv[6])
r0, r1, c0, c1, hz = (int(x) for x in sys.argv[7:12])
shares = [int(x) for x in sys.argv[12:]]
secs = t1 - t0
tot = sum(shares) or 1
print(f"fleet {label} collectors={n} records={total}/{count} seconds={secs:.2f} "
      f"msgs_per_s={total / secs:.0f} receiver_cpu_us_per_msg={(r1 - r0) / hz * 1e6 / count:.2f} "
      f"collectors_cpu_us_per_msg={(c1 - c0) / hz * 1e6 / count:.2f} "
      f"shares={[round(s / tot, 3) for s in shares]}")
EOPY
}
fleet() {
  local port=17300
  echo "fleet: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  for n in 1 2 4; do
    fleet_run $n unthrottled "" $FLEET_COUNT $((port++))
  done
  for n in 1 2 4; do
    fleet_run $n "throttled-$THROTTLE/s" "throttle($THROTTLE)" $THROTTLED_COUNT $((port++))
  done
  echo "fleet: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

case $WHAT in
  single) single ;;
  fleet) fleet ;;
  all) single; fleet ;;
  *) echo "usage: $0 [single|fleet|all]" >&2; exit 2 ;;
esac
