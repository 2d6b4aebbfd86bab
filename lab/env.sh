# lab/env.sh: every setting of the lab, each one overridable from the environment.
# Sourced by all lab scripts (and by tests that call `ensure_tls`). Nothing in here leaves
# loopback: the servers listen on 127.0.0.1 and ::1 only, and their upstreams are each other.

# Where the lab itself lives (this folder; may be read-only).
LAB_DIR="${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
# Writable state: rendered configs, pid files, logs, sockets, caches, TLS material.
# Short on purpose: a unix socket path must fit in 107 bytes.
LAB_RUN="${LAB_RUN:-/tmp/dnstap-lab}"
# Where capture.sh writes recordings (the committed fixtures by default).
LAB_CAPTURES="${LAB_CAPTURES:-$LAB_DIR/captures}"
LAB_ZONES="${LAB_ZONES:-$LAB_DIR/zones}"
LAB_ADDR4="${LAB_ADDR4:-127.0.0.1}"
LAB_ADDR6="${LAB_ADDR6:-::1}"

# DNS listeners (UDP and TCP, v4 and v6).
NSD_PORT="${NSD_PORT:-5301}"            # authoritative for example.test and lab.test
KNOT_PORT="${KNOT_PORT:-5302}"          # the same two zones
UNBOUND_PORT="${UNBOUND_PORT:-5311}"
KRESD_PORT="${KRESD_PORT:-5312}"
REC_PORT="${REC_PORT:-5313}"            # pdns-recursor
BIND_PORT="${BIND_PORT:-5314}"          # resolver, and authoritative for bind.test, dyn.test
DNSDIST_PORT="${DNSDIST_PORT:-5315}"    # in front of unbound
# Encrypted client listeners, where the server has them.
UNBOUND_DOT_PORT="${UNBOUND_DOT_PORT:-8531}"
KRESD_DOT_PORT="${KRESD_DOT_PORT:-8532}"
KRESD_DOH_PORT="${KRESD_DOH_PORT:-4432}"
DNSDIST_DOT_PORT="${DNSDIST_DOT_PORT:-8535}"
DNSDIST_DOH_PORT="${DNSDIST_DOH_PORT:-4435}"
# The resolvers' upstreams: example.test as a stub zone (nsd), lab.test as a forward zone
# (knot), everything else to nsd, which refuses it.
STUB_UPSTREAM_PORT="${STUB_UPSTREAM_PORT:-$NSD_PORT}"
FWD_UPSTREAM_PORT="${FWD_UPSTREAM_PORT:-$KNOT_PORT}"
ROOT_UPSTREAM_PORT="${ROOT_UPSTREAM_PORT:-$NSD_PORT}"
DNSDIST_BACKEND="${DNSDIST_BACKEND:-$LAB_ADDR4:$UNBOUND_PORT}"

# The collector capture.sh runs (fstrm_capture) when no receiver of yours is given.
CAPTURE_TCP_HOST="${CAPTURE_TCP_HOST:-127.0.0.1}"
CAPTURE_TCP_PORT="${CAPTURE_TCP_PORT:-6200}"
CAPTURE_TLS_PORT="${CAPTURE_TLS_PORT:-6201}"
DNSTAP_CONTENT_TYPE="${DNSTAP_CONTENT_TYPE:-protobuf:dnstap.Dnstap}"
# dnstap over TLS (unbound): the collector shows a certificate for DNSTAP_TLS_NAME signed by
# LAB_TLS_DIR/ca.pem. ensure_tls (lib.sh) makes both on first use.
LAB_TLS_DIR="${LAB_TLS_DIR:-$LAB_RUN/tls}"
DNSTAP_TLS_NAME="${DNSTAP_TLS_NAME:-dnstap.lab.test}"

# traffic.sh sizes.
TRAFFIC_QUERIES="${TRAFFIC_QUERIES:-$LAB_DIR/queries/mix.txt}"
TRAFFIC_UDP_N="${TRAFFIC_UDP_N:-1}"
TRAFFIC_QPS="${TRAFFIC_QPS:-4000}"
TRAFFIC_TCP_QUERIES="${TRAFFIC_TCP_QUERIES:-300}"
TRAFFIC_V6_QUERIES="${TRAFFIC_V6_QUERIES:-200}"
TRAFFIC_V6_TCP_QUERIES="${TRAFFIC_V6_TCP_QUERIES:-50}"
TRAFFIC_ENCRYPTED_QUERIES="${TRAFFIC_ENCRYPTED_QUERIES:-200}"

# dnstap identity = this prefix + the server's lab name (lab-unbound, lab-nsd, ...).
LAB_IDENTITY_PREFIX="${LAB_IDENTITY_PREFIX:-lab-}"

export LAB_DIR LAB_RUN LAB_CAPTURES LAB_ZONES LAB_ADDR4 LAB_ADDR6 \
  NSD_PORT KNOT_PORT UNBOUND_PORT KRESD_PORT REC_PORT BIND_PORT DNSDIST_PORT \
  UNBOUND_DOT_PORT KRESD_DOT_PORT KRESD_DOH_PORT DNSDIST_DOT_PORT DNSDIST_DOH_PORT \
  STUB_UPSTREAM_PORT FWD_UPSTREAM_PORT ROOT_UPSTREAM_PORT DNSDIST_BACKEND \
  CAPTURE_TCP_HOST CAPTURE_TCP_PORT CAPTURE_TLS_PORT DNSTAP_CONTENT_TYPE \
  LAB_TLS_DIR DNSTAP_TLS_NAME TRAFFIC_QUERIES TRAFFIC_UDP_N TRAFFIC_QPS \
  TRAFFIC_TCP_QUERIES TRAFFIC_V6_QUERIES TRAFFIC_V6_TCP_QUERIES TRAFFIC_ENCRYPTED_QUERIES \
  LAB_IDENTITY_PREFIX
