# lab/lib.sh: helpers shared by the lab scripts. Source after env.sh.
#
# Processes are tracked by PID files under $LAB_RUN/pids and stopped by those PIDs only
# (never by process name), so two labs with different LAB_RUN can run side by side.

note() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { note "ERROR: $*"; exit 1; }

# The seven servers, in the order they are stopped (front to back).
LAB_SERVERS=(dnsdist unbound kresd pdns-recursor bind knot nsd)

# lab_server ALIAS: the lab's name for a server (accepts the program names too).
lab_server() {
  case "$1" in
    nsd) echo nsd ;;
    knot | knotd) echo knot ;;
    unbound) echo unbound ;;
    kresd | knot-resolver) echo kresd ;;
    pdns-recursor | pdns_recursor | recursor) echo pdns-recursor ;;
    bind | bind9 | named) echo bind ;;
    dnsdist) echo dnsdist ;;
    *) return 1 ;;
  esac
}

port_of() {
  case "$1" in
    nsd) echo "$NSD_PORT" ;;
    knot) echo "$KNOT_PORT" ;;
    unbound) echo "$UNBOUND_PORT" ;;
    kresd) echo "$KRESD_PORT" ;;
    pdns-recursor) echo "$REC_PORT" ;;
    bind) echo "$BIND_PORT" ;;
    dnsdist) echo "$DNSDIST_PORT" ;;
  esac
}

# The dnstap transports the Debian 12 build of each server can use, and why not the others.
transports_of() {
  case "$1" in
    nsd | kresd) echo "unix" ;;
    knot | bind) echo "unix file" ;;
    pdns-recursor | dnsdist) echo "unix tcp" ;;
    unbound) echo "unix tcp tls" ;;
  esac
}
why_not() {
  case "$1" in
    nsd) echo "NSD 4.6 writes dnstap to a unix socket only (network output came in 4.7)" ;;
    knot) echo "mod-dnstap in Knot 3.2 takes a file name or unix:PATH" ;;
    bind) echo "dnstap-output in BIND 9.18 is 'file' or 'unix'" ;;
    kresd) echo "the dnstap module of Knot Resolver 5.6 has socket_path only" ;;
    pdns-recursor) echo "dnstapFrameStreamServer in Recursor 4.8 takes a path or an address, without TLS" ;;
    dnsdist) echo "dnsdist 1.7 has unix and TCP Frame Streams loggers, no TLS" ;;
    unbound) echo "unbound 1.17 cannot write a file itself" ;;
  esac
}

# render TEMPLATE OUT: copies TEMPLATE with each {{NAME}} replaced by the environment
# variable NAME (which may span lines). An unset variable is an error, not an empty string.
render() {
  perl -pe 's/\{\{([A-Z][A-Z0-9_]*)\}\}/exists $ENV{$1} ? $ENV{$1} : die "$ARGV:$.: {{$1}} is not set\n"/ge' \
    "$1" >"$2"
}

pid_file() { echo "$LAB_RUN/pids/$1.pid"; }

# running NAME: the process the lab started under NAME is alive.
running() {
  local f pid
  f="$(pid_file "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  kill -0 "$pid" 2>/dev/null
}

# daemon NAME LOGFILE COMMAND...: runs COMMAND in its own session, in the background, and
# records its PID. The servers run in their foreground modes, so that PID is the server.
daemon() {
  local name="$1" logfile="$2"
  shift 2
  mkdir -p "$LAB_RUN/pids"
  if running "$name"; then
    fail "$name is already running (pid $(<"$(pid_file "$name")")); stop.sh $name first"
  fi
  # In a non-interactive shell a background job does not lead a process group, so setsid
  # execs in place and $! is the command's own PID.
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
  note "started $name (pid $!): $1"
}

# halt NAME [SECONDS]: SIGTERM to the recorded PID, SIGKILL if it outlives SECONDS.
halt() {
  local name="$1" limit="${2:-20}" f pid waited=0
  f="$(pid_file "$name")"
  [[ -s "$f" ]] || return 0
  pid="$(<"$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((waited < limit * 10)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      note "$name (pid $pid) ignored SIGTERM for ${limit}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    note "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# await_dns PORT SECONDS: until a server on LAB_ADDR4:PORT answers the readiness probe
# (`example.test SOA`, any rcode).
await_dns() {
  local port="$1" deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    if dig +time=1 +tries=1 -p "$port" @"$LAB_ADDR4" example.test SOA 2>/dev/null |
      grep -q '^;; ->>HEADER<<-'; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# await_socket PATH SECONDS: until a unix socket exists at PATH.
await_socket() {
  local deadline=$((SECONDS + $2))
  until [[ -S "$1" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# await_listen PORT SECONDS: until something listens on TCP PORT (asked of ss, so that no
# probe connection reaches the listener).
await_listen() {
  local deadline=$((SECONDS + $2))
  until [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# ensure_tls: a private CA ($LAB_TLS_DIR/ca.pem) and a certificate it signed for
# $DNSTAP_TLS_NAME, localhost, 127.0.0.1 and ::1 ($LAB_TLS_DIR/server.{pem,key}). Used by
# the DoT/DoH listeners and by whoever receives unbound's dnstap over TLS. Made once.
ensure_tls() {
  local d="$LAB_TLS_DIR"
  if [[ -s "$d/ca.pem" && -s "$d/server.pem" && -s "$d/server.key" ]]; then
    return 0
  fi
  mkdir -p "$d"
  (
    set -e
    cd "$d"
    openssl req -x509 -new -newkey rsa:2048 -nodes -days 3650 -subj "/CN=dnstap lab CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$DNSTAP_TLS_NAME" \
      -keyout server.key -out server.csr 2>/dev/null
    {
      echo "basicConstraints=CA:FALSE"
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=DNS:$DNSTAP_TLS_NAME,DNS:localhost,IP:127.0.0.1,IP:::1"
    } >leaf.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile leaf.ext -out server.pem 2>/dev/null
    chmod 644 ./*.pem ./*.key
  ) || fail "openssl could not make the lab's TLS files in $d"
  note "made TLS files in $d (CA ca.pem, server.pem for $DNSTAP_TLS_NAME)"
}
