#!/bin/bash
# Parallel writers for the forward and Kafka outputs (docs/performance.md, "Parallel writers
# for forward and Kafka"): loadgen -> receiver over a unix socket, one connection,
# --threads 1, the receiver's only output
#   forward: JSON lines to a discard TCP sink (python, 1 MiB reads), policy block;
#   kafka:   tansu on loopback (memory storage, 4 partitions), value json, lz4, acks=all;
# each with --writers 1 and --writers 2, alternated, ROUNDS rounds.
# Reports per run: end-to-end records/s = COUNT / (loadgen's time + the receiver's drain
# time after SIGTERM until exit), the receiver's whole-process CPU µs per record (user + sys
# from wait4, so every thread: readers, writers, sender / librdkafka threads), and the
# output's delivered/dropped counters; then the median per configuration.
# Usage: scripts/writers-bench.sh [forward|kafka|all] [--corpus FILE]
#   default corpus: loadgen --synth --seed 1 (200,000 messages, looped)
# Env: COUNT (records per run, default 2000000), ROUNDS (default 3), RECEIVER, LOADGEN.
# Build first: cargo build --release -p dnstap-receiver -p loadgen
# Uses TCP ports 17400..17409 on 127.0.0.1.
set -u
WHAT=${1:-all}
shift || true
CORPUS=""
if [[ ${1:-} == --corpus ]]; then CORPUS=$2; fi
W="$(cd "$(dirname "$0")/.." && pwd)"
R=${RECEIVER:-$W/target/release/dnstap_receiver}
L=${LOADGEN:-$W/target/release/loadgen}
COUNT=${COUNT:-2000000}
ROUNDS=${ROUNDS:-3}
D="$(mktemp -d)"
cleanup() {
  rm -rf "$D"
}
trap cleanup EXIT
if [[ -z $CORPUS ]]; then
  CORPUS=$D/synth.fstrm
  "$L" --synth --seed 1 --write-fstrm "$CORPUS" 2>/dev/null || { echo "loadgen --synth failed" >&2; exit 1; }
fi

cat > "$D/discard.py" <<'EOPY'
import socket, sys, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(16)
def serve(c):
    buf = bytearray(1 << 20)
    while c.recv_into(buf):
        pass
    c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOPY
# Runs a command, passes SIGTERM on, and writes its user+sys CPU seconds (wait4) to $1.
cat > "$D/rusage.py" <<'EOPY'
import os, signal, subprocess, sys
p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[2], "w"))
signal.signal(signal.SIGTERM, lambda s, f: p.send_signal(signal.SIGTERM))
_, status, ru = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write("%f\n" % (ru.ru_utime + ru.ru_stime))
EOPY

# one LABEL CONFIG WRITERS COUNTER_PREFIX
one() {
  local label=$1 conf=$2 writers=$3 prefix=$4
  local sock=$D/rx.sock
  rm -f "$sock"
  python3 "$D/rusage.py" "$D/cpu" "$D/rx.err" "$R" -v -u "$sock" --threads 1 \
    --writers "$writers" -c "$conf" &
  local RP=$!
  local t=0
  while [[ ! -S $sock ]] && ((t < 100)); do sleep 0.1; t=$((t + 1)); done
  local out
  out=$("$L" -u "$sock" --count "$COUNT" --json -q "$CORPUS")
  local t0 t1
  # CPU seconds per thread name until loadgen ended (the drain after is not included).
  local threads
  threads=$(python3 - "$(pgrep -P $RP)" <<'EOPY'
import glob, os, sys
tick = os.sysconf("SC_CLK_TCK"); cpu = {}
for st in glob.glob("/proc/%s/task/*/stat" % sys.argv[1]):
    try: s = open(st).read()
    except OSError: continue
    name = s[s.index("(") + 1:s.rindex(")")]; f = s[s.rindex(")") + 2:].split()
    cpu[name] = cpu.get(name, 0) + (int(f[11]) + int(f[12])) / tick
print(" ".join("%s:%.2f" % (k.replace(" ", "_"), v) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.01))
EOPY
)
  t0=$(date +%s.%N)
  kill -TERM $RP
  wait $RP
  t1=$(date +%s.%N)
  local secs cpu
  secs=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  cpu=$(cat "$D/cpu")
  local cnt
  cnt=$(grep -o "output-counters: \"$prefix.*" "$D/rx.err" | tail -1 |
    grep -o 'delivered=[0-9]*\|dropped=[0-9]*' | tr '\n' ' ')
  python3 -c "
c=$COUNT; s=$secs+$t1-$t0
print('$label writers=$writers records_per_s=%d cpu_us_per_record=%.3f drain_s=%.2f $cnt' % (c/s, $cpu*1e6/c, $t1-$t0))"
  echo "  thread CPU s: $threads"
}

forward() {
  # (A function in the pipeline below runs in a subshell: it ends its own helpers.)
  python3 "$D/discard.py" 17400 &
  local DP=$!
  sleep 0.5
  cat > "$D/fwd.yaml" <<EOC
forward-to:
  enable: true
  remote: [127.0.0.1:17400]
  format: json
  buffer-size: 8388608
EOC
  for _ in $(seq "$ROUNDS"); do
    for w in 1 2; do one forward "$D/fwd.yaml" $w forward; done
  done
  kill $DP
  wait $DP 2>/dev/null
}

kafka() {
  local tansu
  tansu=$(command -v tansu || echo "$HOME/.cargo/bin/tansu")
  if [[ ! -x $tansu ]]; then echo "kafka: no tansu (scripts/test installs it); skipped"; return; fi
  for _ in $(seq "$ROUNDS"); do
    for w in 1 2; do
      # A fresh broker per run: memory storage would otherwise grow by every run's records.
      "$tansu" broker --listener-url tcp://127.0.0.1:17401 \
        --advertised-listener-url tcp://127.0.0.1:17401 --storage-engine memory://tansu/ \
        > "$D/tansu.log" 2>&1 &
      local TP=$!
      local t=0
      until (exec 3<>/dev/tcp/127.0.0.1/17401) 2>/dev/null || ((t > 100)); do sleep 0.1; t=$((t + 1)); done
      "$tansu" topic create --broker tcp://127.0.0.1:17401 --partitions 4 dnstap > /dev/null 2>&1
      cat > "$D/kafka.yaml" <<EOC
outputs:
  - kafka:
      brokers: 127.0.0.1:17401
      topic: dnstap
      value: json
      compression: lz4
      acks: all
EOC
      one kafka "$D/kafka.yaml" $w kafka
      kill $TP
      wait $TP 2>/dev/null
    done
  done
}

{
  echo "# corpus: $CORPUS, $COUNT records per run, $ROUNDS rounds, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  case $WHAT in
    forward) forward ;;
    kafka) kafka ;;
    *) forward; kafka ;;
  esac
} | tee "$D/runs.txt"
echo "# medians"
python3 - "$D/runs.txt" <<'EOPY'
import re, statistics, sys
runs = {}
for l in open(sys.argv[1]):
    m = re.match(r"(\w+) writers=(\d+) records_per_s=(\d+) cpu_us_per_record=([\d.]+)", l)
    if m:
        runs.setdefault((m[1], m[2]), []).append((int(m[3]), float(m[4])))
for (out, w), v in sorted(runs.items()):
    print("%s --writers %s: median %.2f M records/s (%s), median %.3f CPU us/record" % (
        out, w, statistics.median(r for r, _ in v) / 1e6,
        ", ".join("%.2f" % (r / 1e6) for r, _ in v), statistics.median(c for _, c in v)))
EOPY
