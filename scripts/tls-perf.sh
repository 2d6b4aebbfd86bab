#!/usr/bin/env bash
# TLS vs plain TCP throughput (docs/performance.md, "TLS input"): one release receiver with a
# tcp and a tls input, loadgen runs interleaved (plain, TLS 1.3, TLS 1.2), REPS times per back-end.
# Prints loadgen's msgs/s and the receiver's CPU time per message (from /proc/PID/stat).
# Build first: cargo build --release -p dnstap-receiver -p loadgen. Needs openssl and bc.
# EXTRA="filter: ..." adds config (the figures use a filter that rejects everything, to
# isolate the input path from output formatting). Certificates are made in $TLSPERF_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
D=${TLSPERF_DIR:-/tmp/tlsperf}; mkdir -p "$D"; cd "$D"
if [[ ! -s srv.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=perf-ca -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  printf 'subjectAltName=DNS:dnstap.test\nextendedKeyUsage=serverAuth\n' > ext.cnf
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=dnstap.test -keyout srv.key -out srv.csr 2>/dev/null
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out srv.pem 2>/dev/null
fi
R=$ROOT/target/release/dnstap_receiver; L=$ROOT/target/release/loadgen
CAP=${CAP:-$ROOT/lab/captures/unbound-tcp.fstrm}
N=${N:-2000000}
FMT=${FMT:-json}
for io in ${IOS:-epoll uring}; do
  cat > cfg.yaml <<EOC
inputs:
  - tcp: 127.0.0.1:7100
  - tls: 127.0.0.1:7101
tls:
  server-cert: $D/srv.pem
  server-key: $D/srv.key
${EXTRA:-}
EOC
  $R -c cfg.yaml --io $io --format $FMT -v > /dev/null 2> recv-$io.log & RP=$!
  sleep 1
  for rep in $(seq ${REPS:-3}); do
    for mode in tcp tls13 tls12; do
      c0=$(awk '{print $14+$15}' /proc/$RP/stat)
      case $mode in
        tcp) out=$($L --tcp 127.0.0.1:7100 --count $N --json $CAP) ;;
        tls13) out=$($L --tcp 127.0.0.1:7101 --tls --tls-ca ca.pem --tls-server-name dnstap.test --tls-version 1.3 --count $N --json $CAP) ;;
        tls12) out=$($L --tcp 127.0.0.1:7101 --tls --tls-ca ca.pem --tls-server-name dnstap.test --tls-version 1.2 --count $N --json $CAP) ;;
      esac
      sleep 0.5
      c1=$(awk '{print $14+$15}' /proc/$RP/stat)
      mps=$(echo "$out" | sed 's/.*"messages_per_second":\([0-9.]*\).*/\1/')
      echo "$io $mode rep=$rep msgs/s=$mps receiver_cpu_s=$(echo "scale=2; ($c1-$c0)/100" | bc) ns/msg=$(echo "($c1-$c0)*10000000/$N" | bc)"
    done
  done
  kill -TERM $RP; wait $RP || true
  grep "stats:" recv-$io.log | tail -1
done
