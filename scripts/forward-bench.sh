#!/bin/bash
# Forward-path throughput (docs/performance.md, "Forwarding"):
#   loadgen -> receiver -> stdout to /dev/null | discard TCP sink | syslog-ng
# Build first: cargo build --release -p dnstap-receiver -p loadgen
# Uses TCP ports 17000, 17001 and 17110..17133 on 127.0.0.1.
set -u
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
