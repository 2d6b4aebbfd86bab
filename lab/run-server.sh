#!/usr/bin/env bash
# Start one lab DNS server, its dnstap pointed wherever you like.
#
#   run-server.sh NAME TRANSPORT [TARGET]
#
#   NAME       nsd | knot | unbound | kresd | pdns-recursor | bind | dnsdist
#   TRANSPORT  none                no dnstap (an upstream for the resolvers)
#              unix [PATH]         connect to a Frame Streams unix socket
#                                  (default $LAB_RUN/sock/NAME.sock)
#              tcp  [HOST:PORT]    connect over TCP (default $CAPTURE_TCP_HOST:$CAPTURE_TCP_PORT)
#              tls  [HOST:PORT]    TCP + TLS, unbound only (default ...:$CAPTURE_TLS_PORT); the
#                                  receiver shows $LAB_TLS_DIR/server.pem (see ensure_tls)
#              file [PATH]         the server writes the file itself, bind and knot only
#                                  (default $LAB_RUN/NAME.fstrm)
#
# A transport the server's Debian 12 build lacks exits 3 with "UNSUPPORTED: ...".
# The server runs in the foreground mode, detached; PID in $LAB_RUN/pids/NAME.pid, rendered
# config and log in $LAB_RUN/NAME/. It returns once the server answers `example.test SOA`
# (at most $LAB_START_TIMEOUT seconds, default 30). Stop it with stop.sh NAME.
#
# Knobs: UNBOUND_DNSTAP_BIDIRECTIONAL=no (unbound: unidirectional Frame Streams),
# UNBOUND_CACHE_MAX_TTL (default 86400), BIND_FSTRM_INPUT_QUEUE (default 16384),
# DNSDIST_FSTRM_OPTS (Lua table for dnsdist's logger, default { inputQueueSize = 16384 }).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$LAB_DIR/lib.sh"

if [[ $# -lt 2 ]]; then
  sed -n '2,24p' "$0" >&2
  exit 2
fi
NAME="$(lab_server "$1")" || fail "no such lab server: $1"
TRANSPORT="$2"
TARGET="${3:-}"

case "$TRANSPORT" in
  none) TARGET="" ;;
  unix) TARGET="${TARGET:-$LAB_RUN/sock/$NAME.sock}" ;;
  tcp) TARGET="${TARGET:-$CAPTURE_TCP_HOST:$CAPTURE_TCP_PORT}" ;;
  tls) TARGET="${TARGET:-$CAPTURE_TCP_HOST:$CAPTURE_TLS_PORT}" ;;
  file) TARGET="${TARGET:-$LAB_RUN/$NAME.fstrm}" ;;
  *) fail "transport must be none, unix, tcp, tls or file (not $TRANSPORT)" ;;
esac
if [[ $TRANSPORT != none && " $(transports_of "$NAME") " != *" $TRANSPORT "* ]]; then
  echo "UNSUPPORTED: $NAME has no dnstap over $TRANSPORT (it has: $(transports_of "$NAME")): $(why_not "$NAME")" >&2
  exit 3
fi
# host and port of a tcp/tls target
T_HOST="${TARGET%:*}"
T_PORT="${TARGET##*:}"

export SRV_RUN="$LAB_RUN/$NAME" DNSTAP_TARGET="$TARGET"
export UNBOUND_CACHE_MAX_TTL="${UNBOUND_CACHE_MAX_TTL:-86400}"
export UNBOUND_DNSTAP_BIDIRECTIONAL="${UNBOUND_DNSTAP_BIDIRECTIONAL:-yes}"
export BIND_FSTRM_INPUT_QUEUE="${BIND_FSTRM_INPUT_QUEUE:-16384}"
DNSDIST_FSTRM_OPTS="${DNSDIST_FSTRM_OPTS:-"{ inputQueueSize = 16384 }"}"

# How each server names the sink in its own configuration language.
sink_for() {
  case "$NAME:$TRANSPORT" in
    knot:unix) echo "unix:$TARGET" ;;
    knot:file) echo "$TARGET" ;;
    unbound:unix) echo "    dnstap-socket-path: \"$TARGET\"" ;;
    unbound:tcp) printf '    dnstap-ip: "%s@%s"\n    dnstap-tls: no' "$T_HOST" "$T_PORT" ;;
    unbound:tls)
      printf '    dnstap-ip: "%s@%s"\n    dnstap-tls: yes\n' "$T_HOST" "$T_PORT"
      printf '    dnstap-tls-server-name: "%s"\n' "$DNSTAP_TLS_NAME"
      printf '    dnstap-tls-cert-bundle: "%s/ca.pem"' "$LAB_TLS_DIR"
      ;;
    bind:unix) echo "unix \"$TARGET\"" ;;
    bind:file) echo "file \"$TARGET\"" ;;
    dnsdist:unix) echo "newFrameStreamUnixLogger('$TARGET', $DNSDIST_FSTRM_OPTS)" ;;
    dnsdist:tcp) echo "newFrameStreamTcpLogger('$TARGET', $DNSDIST_FSTRM_OPTS)" ;;
    *) echo "$TARGET" ;;
  esac
}

mkdir -p "$SRV_RUN" "$LAB_RUN/pids" "$LAB_RUN/sock"
ensure_tls
CONF="$LAB_DIR/conf"
stanza="$CONF/$NAME.dnstap.in"
case "$NAME" in
  bind) stanza="$CONF/named.dnstap.in" ;;
  pdns-recursor) stanza="$CONF/recursor.dnstap.in" ;;
esac
export DNSTAP="" KNOT_MODULE=""
if [[ $TRANSPORT != none ]]; then
  DNSTAP_SINK="$(sink_for)"
  export DNSTAP_SINK
  render "$stanza" "$SRV_RUN/dnstap.part"
  DNSTAP="$(<"$SRV_RUN/dnstap.part")"
  KNOT_MODULE="    global-module: mod-dnstap/lab"
fi
render "$CONF/root.hints.in" "$SRV_RUN/root.hints"
LOG="$SRV_RUN/$NAME.log"
: >"$LOG"

case "$NAME" in
  nsd)
    render "$CONF/nsd.conf.in" "$SRV_RUN/nsd.conf"
    nsd-checkconf "$SRV_RUN/nsd.conf" || fail "nsd-checkconf rejects $SRV_RUN/nsd.conf"
    daemon nsd "$LOG" nsd -d -c "$SRV_RUN/nsd.conf"
    ;;
  knot)
    render "$CONF/knot.conf.in" "$SRV_RUN/knot.conf"
    rm -rf "$SRV_RUN/db"
    mkdir -p "$SRV_RUN/db"
    knotc -c "$SRV_RUN/knot.conf" conf-check >/dev/null || fail "knotc rejects $SRV_RUN/knot.conf"
    daemon knot "$LOG" knotd -c "$SRV_RUN/knot.conf"
    ;;
  unbound)
    render "$CONF/unbound.conf.in" "$SRV_RUN/unbound.conf"
    unbound-checkconf "$SRV_RUN/unbound.conf" >/dev/null || fail "unbound-checkconf rejects $SRV_RUN/unbound.conf"
    daemon unbound "$LOG" unbound -d -c "$SRV_RUN/unbound.conf"
    ;;
  kresd)
    render "$CONF/kresd.conf.in" "$SRV_RUN/kresd.conf"
    rm -rf "$SRV_RUN/cache" "$SRV_RUN/control"
    daemon kresd "$LOG" kresd -n -q -c "$SRV_RUN/kresd.conf" "$SRV_RUN"
    ;;
  pdns-recursor)
    render "$CONF/recursor.conf.in" "$SRV_RUN/recursor.conf"
    render "$CONF/recursor.lua.in" "$SRV_RUN/recursor.lua"
    daemon pdns-recursor "$LOG" pdns_recursor --config-dir="$SRV_RUN"
    ;;
  bind)
    render "$CONF/named.conf.in" "$SRV_RUN/named.conf"
    # dyn.test takes updates: named writes it and its journal, so it gets a fresh copy.
    rm -f "$SRV_RUN/dyn.test.zone.jnl"
    cp "$LAB_ZONES/dyn.test.zone" "$SRV_RUN/dyn.test.zone"
    chmod u+w "$SRV_RUN/dyn.test.zone"
    named-checkconf "$SRV_RUN/named.conf" || fail "named-checkconf rejects $SRV_RUN/named.conf"
    daemon bind "$LOG" named -f -n 1 -c "$SRV_RUN/named.conf"
    ;;
  dnsdist)
    render "$CONF/dnsdist.conf.in" "$SRV_RUN/dnsdist.conf"
    dnsdist --check-config -C "$SRV_RUN/dnsdist.conf" >/dev/null || fail "dnsdist rejects $SRV_RUN/dnsdist.conf"
    daemon dnsdist "$LOG" dnsdist --supervised --disable-syslog -C "$SRV_RUN/dnsdist.conf"
    ;;
esac

PORT="$(port_of "$NAME")"
if ! await_dns "$PORT" "${LAB_START_TIMEOUT:-30}"; then
  note "$NAME does not answer on port $PORT; the end of $LOG:"
  tail -n 20 "$LOG" >&2
  exit 1
fi
note "$NAME answers on $LAB_ADDR4 and $LAB_ADDR6 port $PORT; dnstap: $TRANSPORT ${TARGET:--}"
