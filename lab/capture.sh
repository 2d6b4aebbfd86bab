#!/usr/bin/env bash
# Record the lab's capture fixtures: each server sends dnstap to a reference collector
# (fstrm_capture from libfstrm) while traffic.sh runs, and the file it writes lands in
# $LAB_CAPTURES (default: lab/captures, the files the tests read).
#
#   capture.sh                    every recording in RECORDINGS below (~6 min)
#   capture.sh unbound:tls nsd:wire   only these SERVER:MODE pairs
#
# Modes (what sits between the server and the file):
#   unix, tcp     fstrm_capture listening on a unix socket / 127.0.0.1:$CAPTURE_TCP_PORT
#   tls           socat ends TLS on $CAPTURE_TLS_PORT (the lab certificate) and passes the
#                 plain stream to fstrm_capture on $CAPTURE_TCP_PORT (unbound only)
#   file          no collector: the server writes the file itself (bind, knot)
#   unidir-unix, unidir-tcp
#                 unbound with unidirectional Frame Streams; socat stores the raw byte
#                 stream, which is then itself a Frame Streams file
#   wire          a short run (100 queries) through socat, which keeps a raw copy of each
#                 direction: wire/S-wire.fstrm plus .sender.bin (READY, START, data, STOP)
#                 and .receiver.bin (ACCEPT, FINISH)
#
# Each file is checked afterwards: the Go `dnstap` tool and `dnstap-ldns` must read it and
# count the same number of messages; the counts go to $LAB_CAPTURES/summary.tsv
# (file, bytes, messages, messages per type), which tests use as their oracle.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$LAB_DIR/lib.sh"

RECORDINGS=(
  unbound:unix unbound:tcp unbound:tls unbound:unidir-unix unbound:unidir-tcp
  bind:unix bind:file
  dnsdist:unix dnsdist:tcp
  nsd:unix knot:unix kresd:unix pdns-recursor:unix
  bind:wire dnsdist:wire nsd:wire unbound:wire knot:wire kresd:wire pdns-recursor:wire
)
LAB_SETTLE="${LAB_SETTLE:-3}"
if [[ $# -gt 0 ]]; then
  RECORDINGS=("$@")
fi
mkdir -p "$LAB_CAPTURES/wire" "$LAB_RUN/sock" "$LAB_RUN/collector"
SUMMARY="$LAB_CAPTURES/summary.tsv"

# collector MODE OUT TARGET: starts what records OUT (nothing for `file`).
collector() {
  local mode="$1" out="$2" target="$3" log="$LAB_RUN/collector/$(basename "$2").log"
  local fstrm=(fstrm_capture -t "$DNSTAP_CONTENT_TYPE")
  rm -f "$out" "$out.sender.bin" "$out.receiver.bin"
  : >"$log"
  case "$mode" in
    unix)
      rm -f "$target"
      daemon collector "$log" "${fstrm[@]}" -u "$target" -w "$out"
      await_socket "$target" 10 || fail "fstrm_capture made no socket at $target"
      ;;
    tcp)
      daemon collector "$log" "${fstrm[@]}" -a "${target%:*}" -p "${target##*:}" -w "$out"
      await_listen "${target##*:}" 10 || fail "fstrm_capture does not listen on $target"
      ;;
    tls)
      daemon collector "$log" "${fstrm[@]}" -a "$CAPTURE_TCP_HOST" -p "$CAPTURE_TCP_PORT" -w "$out"
      await_listen "$CAPTURE_TCP_PORT" 10 || fail "fstrm_capture does not listen"
      daemon collector-relay "$log" socat \
        "OPENSSL-LISTEN:${target##*:},bind=${target%:*},reuseaddr,cert=$LAB_TLS_DIR/server.pem,key=$LAB_TLS_DIR/server.key,verify=0" \
        "TCP:$CAPTURE_TCP_HOST:$CAPTURE_TCP_PORT"
      await_listen "${target##*:}" 10 || fail "socat does not listen on $target"
      ;;
    unidir-unix)
      rm -f "$target"
      daemon collector-relay "$log" socat -u "UNIX-LISTEN:$target" "CREATE:$out"
      await_socket "$target" 10 || fail "socat made no socket at $target"
      ;;
    unidir-tcp)
      daemon collector-relay "$log" socat -u "TCP-LISTEN:${target##*:},bind=${target%:*},reuseaddr" "CREATE:$out"
      await_listen "${target##*:}" 10 || fail "socat does not listen on $target"
      ;;
    wire)
      local inner="$LAB_RUN/sock/collector-inner.sock"
      rm -f "$target" "$inner"
      daemon collector "$log" "${fstrm[@]}" -u "$inner" -w "$out"
      await_socket "$inner" 10 || fail "fstrm_capture made no socket at $inner"
      daemon collector-relay "$log" socat -r "$out.sender.bin" -R "$out.receiver.bin" \
        "UNIX-LISTEN:$target" "UNIX-CONNECT:$inner"
      await_socket "$target" 10 || fail "socat made no socket at $target"
      ;;
    file) rm -f "$target" ;;
  esac
}

# collector_done: the relay ends by itself when the server hangs up; fstrm_capture closes
# its file on SIGTERM.
collector_done() {
  local waited=0
  while running collector-relay && ((waited < 50)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  halt collector-relay 5
  halt collector 15
}

upstreams() {
  running nsd || "$LAB_DIR/run-server.sh" nsd none
  running knot || "$LAB_DIR/run-server.sh" knot none
}

# messages FILE: "COUNT<TAB>TYPE=N TYPE=N ..." from the Go dnstap tool; fails when
# dnstap-ldns counts differently.
messages() {
  local yaml go ldns types
  yaml="$(dnstap -r "$1" -y 2>/dev/null)" || return 1
  go="$(grep -c '^type: MESSAGE' <<<"$yaml" || true)"
  ldns="$(dnstap-ldns -r "$1" -q 2>/dev/null | wc -l)" || return 1
  if [[ $go -eq 0 || $go -ne $ldns ]]; then
    note "$(basename "$1"): dnstap counts $go messages, dnstap-ldns $ldns"
    return 1
  fi
  types="$(sed -n 's/^  type: \([A-Z_]*\)$/\1/p' <<<"$yaml" | sort | uniq -c | awk '{printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1}')"
  printf '%s\t%s\n' "$go" "$types"
}

# summarize REL COUNTS: replaces REL's line in summary.tsv.
summarize() {
  local rel="$1" counts="$2" tmp
  tmp="$(mktemp)"
  if [[ -s $SUMMARY ]]; then
    awk -F'\t' -v f="$rel" 'NR > 1 && $1 != f' "$SUMMARY" >"$tmp"
  fi
  {
    printf 'file\tbytes\tmessages\ttypes\n'
    printf '%s\t%s\t%s\n' "$rel" "$(stat -c %s "$LAB_CAPTURES/$rel")" "$counts"
    cat "$tmp"
  } | { read -r header; echo "$header"; sort; } >"$SUMMARY.new"
  mv "$SUMMARY.new" "$SUMMARY"
  rm -f "$tmp"
}

trap '"$LAB_DIR/stop.sh" collector-relay collector >/dev/null 2>&1 || true' EXIT
# record PAIR: one recording; fails when the file is missing or the two decoders disagree.
record() {
  local pair="$1" server mode rel extra transport target out counts
  server="$(lab_server "${pair%%:*}")" || fail "no such lab server in $pair"
  mode="${pair#*:}"
  rel="$server-$mode.fstrm"
  extra=()
  transport="$mode"
  case "$mode" in
    unix) target="$LAB_RUN/sock/collector.sock" ;;
    tcp) target="$CAPTURE_TCP_HOST:$CAPTURE_TCP_PORT" ;;
    tls) target="$CAPTURE_TCP_HOST:$CAPTURE_TLS_PORT" ;;
    file) target="$LAB_RUN/$server-file.fstrm" ;;
    unidir-unix | unidir-tcp)
      [[ $server == unbound ]] || fail "$pair: only unbound speaks unidirectional Frame Streams"
      transport="${mode#unidir-}"
      target="$LAB_RUN/sock/collector.sock"
      [[ $transport == tcp ]] && target="$CAPTURE_TCP_HOST:$CAPTURE_TCP_PORT"
      extra=(UNBOUND_DNSTAP_BIDIRECTIONAL=no)
      ;;
    wire)
      rel="wire/$server-wire.fstrm"
      transport=unix
      target="$LAB_RUN/sock/collector.sock"
      head -n 100 "$TRAFFIC_QUERIES" >"$LAB_RUN/wire-queries.txt"
      extra=(TRAFFIC_QUERIES="$LAB_RUN/wire-queries.txt" TRAFFIC_TCP_QUERIES=20
        TRAFFIC_V6_QUERIES=20 TRAFFIC_V6_TCP_QUERIES=10 TRAFFIC_ENCRYPTED_QUERIES=40)
      ;;
    *) fail "$pair: unknown mode $mode" ;;
  esac
  out="$LAB_CAPTURES/$rel"
  note "=== $server over $mode -> $out"
  upstreams
  # nsd and knot under test take the place of their upstream instance.
  if [[ $server == nsd || $server == knot ]]; then
    halt "$server"
  fi
  if [[ $server == dnsdist ]]; then
    "$LAB_DIR/run-server.sh" unbound none
  fi
  collector "$mode" "$out" "$target"
  if env "${extra[@]}" "$LAB_DIR/run-server.sh" "$server" "$transport" "$target"; then
    env "${extra[@]}" "$LAB_DIR/traffic.sh" "$server" || note "traffic.sh failed"
    # unbound drops what is still queued when it exits: give every server time to flush.
    sleep "$LAB_SETTLE"
  else
    note "$server did not start; see $LAB_RUN/$server/$server.log"
  fi
  halt "$server"
  collector_done
  [[ $server == dnsdist ]] && halt unbound
  [[ $mode == file && -s $target ]] && cp "$target" "$out"
  if [[ -s $out ]] && counts="$(messages "$out")"; then
    chmod 644 "$out" "$out".*.bin 2>/dev/null || true
    summarize "$rel" "$counts"
    note "$rel: $(stat -c %s "$out") bytes, $(cut -f1 <<<"$counts") messages: $(cut -f2 <<<"$counts")"
  else
    return 1
  fi
}

failed=()
for pair in "${RECORDINGS[@]}"; do
  # pdns-recursor opens several connections and sends its data over any of them; the wire
  # relay takes only the first, so a run can end with no data frames: try again.
  for attempt in 1 2 3; do
    if record "$pair"; then
      break
    fi
    note "$pair: attempt $attempt failed"
    if ((attempt == 3)); then
      failed+=("$pair")
    fi
  done
done
"$LAB_DIR/stop.sh"
if ((${#failed[@]} > 0)); then
  fail "no good capture for: ${failed[*]}"
fi
column -t -s $'\t' "$SUMMARY" >&2 || true
