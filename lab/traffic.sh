#!/usr/bin/env bash
# Send a bounded query load to one lab server, on loopback only.
#
#   traffic.sh NAME     NAME = nsd | knot | unbound | kresd | pdns-recursor | bind | dnsdist
#   traffic.sh PORT     any DNS server on $LAB_ADDR4 / $LAB_ADDR6 port PORT (steps 1-4)
#
# Steps (each dnsperf run capped at $TRAFFIC_QPS queries/s and $TRAFFIC_TIME_LIMIT s):
#   1. udp4          UDP over IPv4: all of $TRAFFIC_QUERIES, $TRAFFIC_UDP_N time(s)
#   2. tcp4          TCP over IPv4: its first $TRAFFIC_TCP_QUERIES lines
#   3. udp6+edns+do  UDP over IPv6 with EDNS and DO: the first $TRAFFIC_V6_QUERIES lines
#   4. tcp6          TCP over IPv6: the first $TRAFFIC_V6_TCP_QUERIES lines
#   5. dig           31 odd shapes, once over IPv4 and once over IPv6: no RD, ANY, DO, CHAOS
#                    version.bind, no EDNS, a TXT too big for 512 bytes (TC, then TCP)
#   6. dot4 / doh4   the first $TRAFFIC_ENCRYPTED_QUERIES lines over DoT (unbound, kresd,
#                    dnsdist; dnsperf) and DoH (kresd, dnsdist; dig +https)
#   7. bind only: the nsupdate transactions of queries/updates.txt against dyn.test
#
# Every dnsperf (and DoH dig) step logs `traffic NAME STEP: sent=N completed=N lost=N qps=N`
# (stderr); tests/interop.rs rebuilds the expected queries from these steps and checks `sent=`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$LAB_DIR/lib.sh"

if [[ $# -ne 1 ]]; then
  sed -n '2,21p' "$0" >&2
  exit 2
fi
if [[ $1 =~ ^[0-9]+$ ]]; then
  NAME=port-$1
  PORT=$1
else
  NAME="$(lab_server "$1")" || fail "no such lab server: $1"
  PORT="$(port_of "$NAME")"
fi
V4="$LAB_ADDR4"
V6="$LAB_ADDR6"
LIMIT="${TRAFFIC_TIME_LIMIT:-120}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
first() { head -n "$1" "$TRAFFIC_QUERIES" >"$work/first-$1.txt" && echo "$work/first-$1.txt"; }

# exit_status RC: "exit status 139 (signal 11)" for a process killed by a signal.
exit_status() {
  if (($1 > 128)); then echo "exit status $1 (signal $(($1 - 128)))"; else echo "exit status $1"; fi
}

# step LABEL DNSPERF-ARGS...: one dnsperf run and its report line. A run that reports no
# "Queries sent" (dnsperf gave up or crashed before its first query: a DoT or DoH session it
# could not set up on a loaded machine) is tried once more, after its exit status and its
# report's last lines.
step() {
  local label="$1" report attempt rc
  shift
  for attempt in 1 2; do
    rc=0
    report="$(dnsperf -l "$LIMIT" -t 3 -Q "$TRAFFIC_QPS" "$@" 2>&1)" || rc=$?
    if grep -q '^ *Queries sent:' <<<"$report" || ((attempt == 2)); then
      break
    fi
    note "traffic $NAME $label: dnsperf reported no queries sent ($(exit_status "$rc")), once more:"
    tail -n 5 <<<"$report" >&2
    sleep 1
  done
  local sent completed lost qps
  sent="$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' <<<"$report")"
  completed="$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' <<<"$report")"
  lost="$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' <<<"$report")"
  qps="$(sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' <<<"$report")"
  note "traffic $NAME $label: sent=${sent:-?} completed=${completed:-?} lost=${lost:-?} qps=${qps:-?}"
  if [[ -z $sent ]]; then
    note "traffic $NAME $label: dnsperf $(exit_status "$rc")"
    tail -n 5 <<<"$report" >&2
  fi
}

# doh_step LABEL ADDR PORT FILE: the queries of FILE over DoH with dig (+https, one query at
# a time), logged like a dnsperf step. dnsperf 2.10's DoH mode dies
# of SIGSEGV now and then (before its first query with two clients; on a loaded machine
# with one), losing its report, so DoH does not use it. `sent` is the lines dig was given
# (+tries=1: each is sent once), `completed` the answers it printed.
doh_step() {
  local label="$1" addr="$2" port="$3" file="$4" sent completed
  sent="$(grep -c . "$file")"
  completed="$(dig @"$addr" -p "$port" +https +time=3 +tries=1 -f "$file" 2>&1 \
    | grep -c '^;; ->>HEADER<<-' || true)"
  note "traffic $NAME $label: sent=$sent completed=$completed lost=$((sent - completed)) qps=?"
}

# Every step is capped: uncapped bursts (25k+ queries/s) made nsd, kresd and named drop
# dnstap frames before they reach any socket.
step udp4 -s "$V4" -p "$PORT" -d "$TRAFFIC_QUERIES" -n "$TRAFFIC_UDP_N" -c 4 -q 50
step tcp4 -s "$V4" -p "$PORT" -m tcp -d "$(first "$TRAFFIC_TCP_QUERIES")" -n 1 -c 4 -q 20
step udp6+edns+do -s "$V6" -p "$PORT" -D -d "$(first "$TRAFFIC_V6_QUERIES")" -n 1 -c 2 -q 20
step tcp6 -s "$V6" -p "$PORT" -m tcp -d "$(first "$TRAFFIC_V6_TCP_QUERIES")" -n 1 -c 1 -q 10

# The dig batch (tests/interop/traffic.rs lists the same 31 questions).
{
  echo "www.example.test A +norecurse"
  echo "host0007.lab.test AAAA +norecurse"
  echo "example.test ANY"
  echo "www.example.test A +dnssec"
  echo "big.example.test TXT +bufsize=512 +ignore"
  echo "big.example.test TXT +tcp"
  echo "version.bind TXT -c CH"
  echo "www.example.test A +noedns +nocookie"
  echo "blocked.example.test A"
  for i in $(seq -w 1 20); do
    echo "n0$i.bind.test A +norecurse"
  done
  echo "bind.test SOA +norecurse"
  echo "www.bind.test AAAA +norecurse +tcp"
} >"$work/dig.txt"
answers=0
for server in "$V4" "$V6"; do
  n="$(dig @"$server" -p "$PORT" +time=2 +tries=1 -f "$work/dig.txt" 2>&1 | grep -c '^;; ->>HEADER<<-' || true)"
  answers=$((answers + n))
done
note "traffic $NAME dig: $answers answers to 2 x $(wc -l <"$work/dig.txt") questions"

enc="$(first "$TRAFFIC_ENCRYPTED_QUERIES")"
case "$NAME" in
  unbound)
    step dot4 -s "$V4" -p "$UNBOUND_DOT_PORT" -m dot -d "$enc" -n 1 -c 2 -q 10
    ;;
  kresd)
    step dot4 -s "$V4" -p "$KRESD_DOT_PORT" -m dot -d "$enc" -n 1 -c 2 -q 10
    doh_step doh4 "$V4" "$KRESD_DOH_PORT" "$enc"
    ;;
  dnsdist)
    step dot4 -s "$V4" -p "$DNSDIST_DOT_PORT" -m dot -d "$enc" -n 1 -c 2 -q 10
    doh_step doh4 "$V4" "$DNSDIST_DOH_PORT" "$enc"
    ;;
  bind)
    { echo "server $V4 $PORT"; cat "$LAB_DIR/queries/updates.txt"; } >"$work/updates.txt"
    nsupdate -t 3 "$work/updates.txt" >"$work/nsupdate.out" 2>&1 || true
    note "traffic bind nsupdate: $(grep -c '^send' "$LAB_DIR/queries/updates.txt") transactions, $(grep -ci 'failed' "$work/nsupdate.out" || true) refused by a prerequisite"
    ;;
esac
