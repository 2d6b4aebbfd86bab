#!/usr/bin/env bash
# Receiver throughput comparison, in one run, on one machine, on two corpora (synthetic
# traffic and the lab's real DNS-server frames, each in every configuration):
#
#   fstrm_capture        the C reference (libfstrm): copies raw frames to a file, no decoding
#   golang dnstap        text (-q) and JSON (-j) to a file
#   python               dnstap_receiver 4.7 from PyPI (JSON to stdout, 1 connection), in a
#                        venv made under target/perf-venv (skipped with a note without
#                        python3-venv or PyPI); it gets --python-count messages
#   dnstap_receiver      text and JSON to a file, with one writer thread (--writers 1) and
#                        with two (the default on 2+ CPUs), and a qname filter that
#                        rejects nearly all; over TCP
#                        with 8 connections also JSON from two processes sharing the port
#                        with --reuse-port (each with one writer and its own file);
#                        and JSON through the transforms: a 1,000,000-name
#                        drop-domain-file, downsample 10 and the reducer (one writer),
#                        beside plain JSON with one writer, each transport and conns
#
# each over a unix socket and TCP, with 1 and 8 connections, fed by loadgen (as fast as the
# receiver takes it, bidirectional Frame Streams). For each configuration it reports the
# median over the runs of: msgs/s, receiver CPU µs per message (user + system, all
# threads), peak RSS, and the ratios to fstrm_capture (same transport and connections) and
# to golang dnstap (same format) and python dnstap_receiver (JSON). See docs/performance.md.
#
# The corpora: "synth" is loadgen --synth --seed 1 (200,000 messages); "real" is one lab
# capture per server (lab/captures: unbound, bind, dnsdist, nsd, knot, kresd,
# pdns-recursor; 57,922 messages, 143 bytes on average) concatenated; loadgen loops both.
#
#   scripts/perf.sh                  full run (release build; a few minutes)
#   scripts/perf.sh --smoke          tiny counts, 1 run, debug build: checks that every
#                                    configuration runs and delivers every message (CI);
#                                    the real corpus only with 1 connection, no python
#
# Options (or environment):
#   --count N        messages per run for fstrm_capture and dnstap_receiver (PERF_COUNT,
#                    default 4,000,000); golang dnstap gets N/10 (it is ~30x slower)
#   --runs R         runs per configuration; medians are reported (PERF_RUNS, default 3)
#   --corpus C       synth, real or a .fstrm file; repeat for several (default: synth and
#                    real)
#   --python-count N messages per run for python dnstap_receiver (PERF_PYTHON_COUNT,
#                    default 20,000; 0 leaves it out; it takes ~7,000 msgs/s)
#   --threads        also print each receiver thread's CPU µs per message (stderr)
#   --only REGEX     only the configurations whose corpus/label matches (e.g.
#                    'ours-json.*unix', 'real/.*/unix/1')
#   --out DIR        where outputs go while a run lasts (PERF_DIR, default a temp dir);
#                    use a tmpfs to keep the disk out of the measurement
#   RECEIVER, LOADGEN  binaries (default target/release/..., target/debug/... with --smoke)
#
# It installs no package: fstrm_capture (fstrm-bin) and dnstap
# (golang-github-dnstap-golang-dnstap-cli) come from .ci/run / the lab's setup.sh; a
# missing one is skipped with a note (an error with --smoke under CI=true). Only the python
# baseline is fetched (pip, into the venv under target/), and only without --smoke.
# Exit status: 0, or 1 if a receiver lost messages or a configuration failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

count="${PERF_COUNT:-4000000}"
runs="${PERF_RUNS:-3}"
python_count="${PERF_PYTHON_COUNT:-20000}"
corpus_args=()
only=""
smoke=0
threads=0
outdir="${PERF_DIR:-}"
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --count) count="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --corpus) corpus_args+=("$2"); shift ;;
    --python-count) python_count="$2"; shift ;;
    --threads) threads=1 ;;
    --only) only="$2"; shift ;;
    --out) outdir="$2"; shift ;;
    -h|--help) sed -n '2,53p' "$0"; exit 0 ;;
    *) echo "perf.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if ((smoke)); then
  count="${PERF_COUNT:-30000}"
  runs=1
  python_count=0
  profile=debug
  cargo build --quiet -p dnstap-receiver -p loadgen
else
  profile=release
  cargo build --quiet --release -p dnstap-receiver -p loadgen
fi
RECEIVER="${RECEIVER:-$root/target/$profile/dnstap_receiver}"
LOADGEN="${LOADGEN:-$root/target/$profile/loadgen}"
golang_count=$((count / 10 > 20000 ? count / 10 : (count < 20000 ? count : 20000)))

work="$(mktemp -d "${outdir:-${TMPDIR:-/tmp}}/dnstap-perf.XXXXXX")"
receiver_pid=""
receiver_pid2=""  # the second process of the --reuse-port configuration
cleanup() {
  local pid
  for pid in "$receiver_pid" "$receiver_pid2"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

have() { command -v "$1" >/dev/null 2>&1; }
missing_tool() {
  if ((smoke)) && [[ "${CI:-}" == true ]]; then
    echo "perf.sh: $1 is missing (CI=true: not skipping)" >&2
    exit 1
  fi
  echo "perf.sh: skipping $2: $1 is not installed" >&2
}

# The corpora: NAME FILE, and a label for the table's heading.
((${#corpus_args[@]})) || corpus_args=(synth real)
corpora=()
corpus_labels=()
real_captures=(unbound-unix bind-unix dnsdist-unix nsd-unix knot-unix kresd-unix
               pdns-recursor-unix)
for c in "${corpus_args[@]}"; do
  case "$c" in
    synth)
      "$LOADGEN" --synth --seed 1 --write-fstrm "$work/synth.fstrm" 2>/dev/null
      corpora+=("synth $work/synth.fstrm")
      corpus_labels+=("synth = loadgen --synth --seed 1 (200,000 messages)")
      ;;
    real)
      files=()
      for f in "${real_captures[@]}"; do files+=("lab/captures/$f.fstrm"); done
      real_note="$("$LOADGEN" "${files[@]}" --write-fstrm "$work/real.fstrm" 2>&1)"
      corpora+=("real $work/real.fstrm")
      corpus_labels+=("real = lab/captures/{$(IFS=,; echo "${real_captures[*]}")}.fstrm concatenated (${real_note#loadgen: wrote })")
      ;;
    *)
      name="$(basename "$c" .fstrm)"
      name="${name//[^A-Za-z0-9_.-]/_}"
      corpora+=("$name $c")
      corpus_labels+=("$name = $c")
      ;;
  esac
done

# A filter that rejects nearly everything: a DFA walk over every qname; it keeps about 1 in
# 2,000 messages of the synthetic corpus (www.ka*.<tld>.).
cat > "$work/filter.yaml" <<'EOF'
filter:
  qname-regex: "(?i)www\\.ka[a-z]*\\."
EOF

# The transforms configuration: a drop list of a million names (none of them in the
# synthetic corpus, so each message costs a full look-up), 1 in 10 sampled, the rest
# reduced. A short reducer window (0.2 s), so that the last window is released before the
# run's end is detected (the output unchanged for 0.3 s).
# (--smoke: 10,000 names; the debug build would take longer to load a million than the
# start-up wait allows.)
names=1000000
((smoke)) && names=10000
awk -v n="$names" 'BEGIN { for (i = 0; i < n; i++) printf "n%d.zone%d.example\n", i, i % 997 }' \
  > "$work/drop-1m.txt"
cat > "$work/xform.yaml" <<EOF
transforms:
  filtering:
    drop-domain-file: $work/drop-1m.txt
    downsample: 10
  reducer:
    watch-interval: 0.2
EOF

# The enrichment transforms on plain JSON: query/response latency, the public suffix and
# registered domain of every qname (from the Public Suffix List) and Crypto-PAn pseudonyms
# of both addresses; the row "ours-enrich" sits beside "ours-json" of the same run. (The
# seed's JSON prints neither the latency nor the public suffix, the full formats do: the
# row measures computing them.)
head -c 32 /dev/urandom > "$work/privacy.key"
cat > "$work/enrich.yaml" <<EOF
transforms:
  latency: {}
  normalize: {add-tld: true, add-etld1: true}
  user-privacy: {pseudonymize-ip: crypto-pan, key-file: $work/privacy.key}
EOF

# The python baseline: dnstap_receiver 4.7.0 from PyPI in a venv of its own under target/
# (made once, kept between runs), JSON lines to stdout; its config turns off what it would
# otherwise start (web API, TCP input when it reads the unix socket).
python_venv="$root/target/perf-venv"
python_bin=""
setup_python() {
  if [[ -x "$python_venv/bin/dnstap_receiver" ]]; then
    python_bin="$python_venv/bin/dnstap_receiver"
    return 0
  fi
  if ! have python3; then
    echo "perf.sh: skipping python dnstap_receiver: python3 is not installed" >&2
    return 1
  fi
  if ! python3 -m venv "$python_venv" >/dev/null 2>&1 \
      || ! "$python_venv/bin/pip" install -q --disable-pip-version-check \
           dnstap-receiver==4.7.0 >/dev/null 2>&1 \
      || [[ ! -x "$python_venv/bin/dnstap_receiver" ]]; then
    echo "perf.sh: skipping python dnstap_receiver: no venv or no PyPI" \
         "(python3 -m venv; pip install dnstap-receiver==4.7.0)" >&2
    rm -rf "$python_venv"
    return 1
  fi
  python_bin="$python_venv/bin/dnstap_receiver"
}
for t in tcp unix; do
  cat > "$work/python-$t.yml" <<EOF
trace:
  verbose: false
web-api:
  enable: false
input:
  tcp-socket:
    enable: $([[ $t == tcp ]] && echo true || echo false)
output:
  stdout:
    enable: true
    format: json
EOF
done

# --- one measured run ------------------------------------------------------------------

port=6400
tcp_port() { port=$((port + 1)); echo "$port"; }

wait_listening() {  # wait_listening unix PATH | tcp PORT
  local i
  for ((i = 0; i < 200; i++)); do
    if [[ "$1" == unix ]]; then
      [[ -S "$2" ]] && return 0
    elif ss -Hltn "sport = :$2" 2>/dev/null | grep -q .; then
      return 0
    fi
    kill -0 "$receiver_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# cpu_ticks PID: user + system clock ticks of the whole process (all threads).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
mtime() { stat -c %.9Y "$1"; }
now() { date +%s.%N; }

# thread_cpu PID MESSAGES: each thread's CPU µs per message (user + system, threads of the
# same name summed), e.g. "reader 0.052 writer 0.301".
thread_cpu() {
  local t
  for t in /proc/"$1"/task/*; do
    # comm may hold spaces: the fields after it are counted from the closing parenthesis.
    sed -E 's/^[0-9]+ \((.*)\) (.*)$/\1\t\2/' "$t/stat" 2>/dev/null
  done | awk -F'\t' -v n="$2" '{ split($2, f, " "); name = $1; sub(/[-_ ]?[0-9]+$/, "", name)
    cpu[name] += f[12] + f[13] }
    END { for (k in cpu) if (cpu[k] > 0) printf "%s %.3f ", k, cpu[k] * 1e6 / 100 / n }'
}

# measure LABEL RECEIVER_KIND FORMAT TRANSPORT CONNS MESSAGES CORPUS_FILE
# Prints one TSV line: label msgs/s cpu_us_per_msg peak_rss_kb delivered expected
measure() {
  local label="$1" kind="$2" format="$3" transport="$4" conns="$5" n="$6" corpus="$7"
  local out="$work/out" out2="$work/out.2" sock="$work/rx.sock" p="" cmd=() target=()
  rm -f "$out" "$out2" "$sock"
  if [[ "$transport" == tcp ]]; then
    p="$(tcp_port)"
    target=(--tcp "127.0.0.1:$p")
  else
    target=(-u "$sock")
  fi
  case "$kind" in
    fstrm_capture)
      cmd=(fstrm_capture -t protobuf:dnstap.Dnstap -w "$out")
      if [[ "$transport" == tcp ]]; then cmd+=(-a 127.0.0.1 -p "$p"); else cmd+=(-u "$sock"); fi
      ;;
    golang)
      cmd=(dnstap -w "$out")
      if [[ "$format" == json ]]; then cmd+=(-j); else cmd+=(-q); fi
      if [[ "$transport" == tcp ]]; then cmd+=(-l "127.0.0.1:$p"); else cmd+=(-u "$sock"); fi
      ;;
    ours)
      case "$format" in
        filter) cmd=("$RECEIVER" --format json -c "$work/filter.yaml") ;;
        xform) cmd=("$RECEIVER" --format json -c "$work/xform.yaml") ;;
        enrich) cmd=("$RECEIVER" --format json --writers 1 -c "$work/enrich.yaml") ;;
        *w2) cmd=("$RECEIVER" --format "${format%w2}" --writers 2) ;;
        *) cmd=("$RECEIVER" --format "$format" --writers 1) ;;
      esac
      if [[ "$transport" == tcp ]]; then cmd+=(-l 127.0.0.1 -p "$p"); else cmd+=(-u "$sock"); fi
      ;;
    ours2)  # two processes on one TCP port (SO_REUSEPORT)
      cmd=("$RECEIVER" --format json --writers 1 --reuse-port -l 127.0.0.1 -p "$p")
      ;;
    python)
      cmd=("$python_bin" -c "$work/python-$transport.yml")
      if [[ "$transport" == tcp ]]; then cmd+=(-l 127.0.0.1 -p "$p"); else cmd+=(-u "$sock"); fi
      ;;
  esac
  if [[ "$kind" == ours2 ]]; then
    "${cmd[@]}" > "$out2" 2> "$work/rx2.log" &
    receiver_pid2=$!
    "${cmd[@]}" > "$out" 2> "$work/rx.log" &
  elif [[ "$kind" == ours || "$kind" == python ]]; then
    "${cmd[@]}" > "$out" 2> "$work/rx.log" &
  else
    "${cmd[@]}" > "$work/rx.log" 2>&1 &
  fi
  receiver_pid=$!
  if ! wait_listening "$transport" "${p:-$sock}"; then
    echo "perf.sh: $label: the receiver did not start: $(tail -3 "$work/rx.log")" >&2
    return 1
  fi
  if [[ -n "$receiver_pid2" ]]; then  # both processes must listen before loadgen connects
    local i
    for ((i = 0; i < 200; i++)); do
      (($(ss -Hltn "sport = :$p" | wc -l) >= 2)) && break
      sleep 0.05
    done
  fi
  local t1 tend ticks rss lg
  # (python takes seconds to drain what the socket buffers hold: a longer FINISH wait.)
  if ! lg="$("$LOADGEN" "${target[@]}" -n "$conns" --count "$n" --json -q \
             --reply-timeout 120 "$corpus")"; then
    echo "perf.sh: $label: loadgen failed" >&2
    [[ -n "$receiver_pid2" ]] && { kill -TERM "$receiver_pid2" 2>/dev/null || true; }
    receiver_pid2=""
    kill -TERM "$receiver_pid" 2>/dev/null || true
    wait "$receiver_pid" 2>/dev/null || true
    return 1
  fi
  t1="$(now)"
  # The run ends when the receiver has written its last byte: wait until the output has
  # not changed for 0.3 s, and take the time of its last change.
  local last="" cur stable=0 outs=("$out")
  [[ -n "$receiver_pid2" ]] && outs+=("$out2")
  touch "${outs[@]}"
  while ((stable < 6)); do
    cur="$(stat -c '%s %.9Y' "${outs[@]}")"
    if [[ "$cur" == "$last" ]]; then stable=$((stable + 1)); else stable=0; last="$cur"; fi
    sleep 0.05
  done
  tend="$(stat -c %.9Y "${outs[@]}" | sort -n | tail -1)"
  ticks="$(cpu_ticks "$receiver_pid")"
  rss="$(peak_rss_kb "$receiver_pid")"
  if ((threads)) && [[ "$kind" == ours* ]]; then
    echo "perf.sh: $label: CPU µs/msg by thread: $(thread_cpu "$receiver_pid" "$n")" >&2
  fi
  if [[ -n "$receiver_pid2" ]]; then  # CPU and memory of both processes
    ticks=$((ticks + $(cpu_ticks "$receiver_pid2")))
    rss=$((rss + $(peak_rss_kb "$receiver_pid2")))
    kill -TERM "$receiver_pid2"
    wait "$receiver_pid2" 2>/dev/null || true
    receiver_pid2=""
  fi
  kill -TERM "$receiver_pid"
  wait "$receiver_pid" 2>/dev/null || true
  receiver_pid=""
  local delivered expected
  case "$kind" in
    fstrm_capture)
      # The file holds START (42 bytes), the data frames and STOP (12): compare data bytes.
      delivered="$(($(stat -c %s "$out") - 54))"
      expected="$(grep -o '"bytes":[0-9]*' <<<"$lg" | cut -d: -f2)"
      ;;
    *)
      delivered="$(cat "${outs[@]}" | wc -l)"
      expected="$n"
      [[ "$format" == filter || "$format" == xform ]] && expected="filter"
      if [[ "$kind" == python ]]; then
        # 4.7 prints its log lines to stdout too, and drops the messages it cannot decode
        # (saying nothing of them): its records are counted, not checked ("~").
        delivered="$(grep -c '^{' "$out" || true)"
        expected="~$n"
      fi
      ;;
  esac
  rm -f "$out" "$out2"
  # The clock starts when loadgen starts connecting (its own "seconds" runs from there to
  # the last FINISH; its start-up, reading and encoding the corpus, is not counted).
  local lg_secs
  lg_secs="$(grep -o '"seconds":[0-9.]*' <<<"$lg" | cut -d: -f2)"
  awk -v l="$label" -v n="$n" -v lgs="$lg_secs" -v t1="$t1" -v te="$tend" -v ticks="$ticks" \
      -v rss="$rss" -v d="$delivered" -v e="$expected" 'BEGIN {
    secs = lgs + ((te > t1) ? te - t1 : 0);
    printf "%s\t%.0f\t%.3f\t%d\t%s\t%s\n", l, n / secs, ticks * 1e6 / 100 / n, rss, d, e }'
}

# --- the configurations -----------------------------------------------------------------

configs=()  # label kind format transport conns
for transport in unix tcp; do
  for conns in 1 8; do
    configs+=("fstrm_capture/$transport/$conns fstrm_capture raw $transport $conns")
    configs+=("golang-text/$transport/$conns golang text $transport $conns")
    configs+=("golang-json/$transport/$conns golang json $transport $conns")
    ((conns == 1)) && configs+=("python-json/$transport/$conns python json $transport $conns")
    configs+=("ours-text/$transport/$conns ours text $transport $conns")
    configs+=("ours-json/$transport/$conns ours json $transport $conns")
    configs+=("ours-textw2/$transport/$conns ours textw2 $transport $conns")
    configs+=("ours-jsonw2/$transport/$conns ours jsonw2 $transport $conns")
    configs+=("ours-filter/$transport/$conns ours filter $transport $conns")
    ((conns == 1)) && configs+=("ours-xform/$transport/$conns ours xform $transport $conns")
    configs+=("ours-enrich/$transport/$conns ours enrich $transport $conns")
  done
done
configs+=("ours-json2/tcp/8 ours2 json tcp 8")

have fstrm_capture || missing_tool fstrm_capture "the fstrm_capture baseline"
have dnstap || missing_tool dnstap "golang dnstap"
have ss || missing_tool ss "TCP configurations (ss from iproute2 tells when a port listens)"
# The python venv is made when its first configuration comes up (1: have it, 2: skipped).
have_python=0
((python_count > 0)) || have_python=2

results="$work/results.tsv"
: > "$results"
failed=0
for c in "${corpus_labels[@]}"; do echo "perf.sh: corpus $c" >&2; done
echo "perf.sh: $count messages per run ($golang_count for golang dnstap, $python_count for python), $runs run(s) each" >&2
echo "perf.sh: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((r = 1; r <= runs; r++)); do
  for cp in "${corpora[@]}"; do
    read -r cname cfile <<<"$cp"
    for c in "${configs[@]}"; do
      read -r label kind format transport conns <<<"$c"
      [[ -n "$only" && ! "$cname/$label" =~ $only ]] && continue
      # --smoke: the real corpus with one connection, every configuration on the synthetic.
      ((smoke)) && [[ "$cname" != synth && "$conns" != 1 ]] && continue
      [[ "$kind" == fstrm_capture ]] && ! have fstrm_capture && continue
      [[ "$kind" == golang ]] && ! have dnstap && continue
      if [[ "$kind" == python ]] && ((have_python != 1)); then
        ((have_python == 0)) && { setup_python && have_python=1 || have_python=2; }
        ((have_python == 1)) || continue
      fi
      [[ "$transport" == tcp ]] && ! have ss && continue
      n="$count"
      [[ "$kind" == golang ]] && n="$golang_count"
      [[ "$kind" == python ]] && n="$python_count"
      if line="$(measure "$cname/$label" "$kind" "$format" "$transport" "$conns" "$n" "$cfile")"; then
        echo "$line" >> "$results"
        echo "perf.sh: run $r: $line (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        read -r _ _ _ _ delivered expected <<<"$line"
        if [[ "$expected" != filter && "$expected" != "~"* && "$delivered" != "$expected" ]]; then
          echo "perf.sh: $cname/$label: delivered $delivered of $expected" >&2
          failed=1
        fi
      else
        failed=1
      fi
    done
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- the table: medians, ratios ---------------------------------------------------------

# Per corpus (first column), ratios only within the corpus: to fstrm_capture on the same
# transport and connections, to golang dnstap in the same format, to python (JSON, 1 conn).
# Then the issue targets, each checked on every corpus.
awk -F'\t' -v runs="$runs" -v load="$load_after" '
function median(key, col,    n, i, j, t, a) {
  n = cnt[key]
  for (i = 1; i <= n; i++) a[i] = val[key, i, col]
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cap(s) { return toupper(substr(s, 1, 1)) substr(s, 2) }
function describe(who, fmt,    w) {
  if (who == "fstrm_capture") return "raw frames"
  if (who == "python") return "JSON (4.7)"
  if (who == "golang") return cap(fmt)
  if (fmt == "filter") return "JSON, qname filter rejecting ~all"
  if (fmt == "xform") return "JSON, 1 M-name drop list + downsample 10 + reducer"
  if (fmt == "enrich") return "JSON + latency + eTLD+1 + Crypto-PAn, --writers 1"
  if (fmt == "json2") return "JSON, 2 processes (--reuse-port, --writers 1 each)"
  if (fmt ~ /w2$/) return cap(substr(fmt, 1, length(fmt) - 2)) ", --writers 2 (default)"
  return cap(fmt) ", --writers 1"
}
function ratio(a, b, digits) { return (a in rate && b in rate && a != b) ? sprintf("%." digits "f", rate[a] / rate[b]) : "–" }
# range(PATTERN over keys, numerator suffix, denominator suffix): "min–max" of the ratios.
{
  k = $1; if (!(k in cnt)) order[++nk] = k
  cnt[k]++; for (c = 2; c <= 6; c++) val[k, cnt[k], c] = $c
}
END {
  for (i = 1; i <= nk; i++) {
    k = order[i]; rate[k] = median(k, 2); cpu[k] = median(k, 3); rss[k] = median(k, 4)
    got[k] = median(k, 5)
  }
  printf "Medians of %d run(s). Load average after: %s.\n\n", runs, load
  print "| corpus | receiver | output | transport | conns | msgs/s | CPU µs/msg | peak RSS MB | × fstrm_capture | × golang (same format) | × python (JSON) |"
  print "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, p, "/"); split(p[2], w, "-")
    # p: corpus, who-format, transport, conns
    name = (w[1] == "ours" ? "dnstap_receiver" : w[1] == "golang" ? "golang dnstap" : w[1] == "python" ? "python dnstap_receiver" : "fstrm_capture")
    out = describe(w[1], w[2])
    if (w[1] == "python") { e = val[k, 1, 6]; sub(/^~/, "", e); out = out sprintf(", printed %d of %d", got[k], e) }
    tail = "/" p[3] "/" p[4]
    fmt = w[2]; sub(/(2|w2)$/, "", fmt)
    rb = ratio(k, p[1] "/fstrm_capture" tail, 2)
    rg = (w[1] == "ours" && (fmt == "text" || fmt == "json")) ? ratio(k, p[1] "/golang-" fmt tail, 1) : "–"
    rp = (w[1] == "ours" && fmt == "json") ? ratio(k, p[1] "/python-json" tail, 0) : "–"
    rs = (rate[k] >= 1e5) ? sprintf("%.2f M", rate[k] / 1e6) : sprintf("%.1f k", rate[k] / 1e3)
    printf "| %s | %s | %s | %s | %s | %s | %.3f | %.1f | %s | %s | %s |\n", p[1], name, out, p[3], p[4], rs, cpu[k], rss[k] / 1024, rb, rg, rp
  }
  # The targets, per corpus.
  print "\nTargets (each corpus; the receiver with its default two writers unless named):\n"
  for (i = 1; i <= nk; i++) { split(order[i], p, "/"); if (!(p[1] in seen)) { seen[p[1]] = 1; corp[++nc] = p[1] } }
  for (ci = 1; ci <= nc; ci++) {
    c = corp[ci]
    printf "- %s: JSON, unix, 1 conn >= 1.0x fstrm_capture: %s (%s; --writers 1: %s)\n", c,
      ratio(c "/ours-jsonw2/unix/1", c "/fstrm_capture/unix/1", 2),
      (c "/ours-jsonw2/unix/1" in rate && c "/fstrm_capture/unix/1" in rate) ? sprintf("%.2f vs %.2f M msgs/s", rate[c "/ours-jsonw2/unix/1"] / 1e6, rate[c "/fstrm_capture/unix/1"] / 1e6) : "not measured",
      ratio(c "/ours-json/unix/1", c "/fstrm_capture/unix/1", 2)
    lo = ""; hi = ""; lo1 = ""; hi1 = ""; lop = ""; hip = ""; lof = ""; hif = ""; maxrss = 0; xf = ""
    for (i = 1; i <= nk; i++) {
      k = order[i]; split(k, p, "/"); if (p[1] != c) continue
      tail = "/" p[3] "/" p[4]
      if (p[2] == "ours-textw2" && (c "/golang-text" tail) in rate) { r = rate[k] / rate[c "/golang-text" tail]; if (lo == "" || r < lo) lo = r; if (hi == "" || r > hi) hi = r }
      if (p[2] == "ours-text" && (c "/golang-text" tail) in rate) { r = rate[k] / rate[c "/golang-text" tail]; if (lo1 == "" || r < lo1) lo1 = r; if (hi1 == "" || r > hi1) hi1 = r }
      if (p[2] == "ours-jsonw2" && (c "/python-json" tail) in rate) { r = rate[k] / rate[c "/python-json" tail]; if (lop == "" || r < lop) lop = r; if (hip == "" || r > hip) hip = r }
      if (p[2] == "ours-filter") { r = rate[k] / 1e6; if (lof == "" || r < lof) lof = r; if (hif == "" || r > hif) hif = r; fl = fl sprintf(" %s/%s %.1f M", p[3], p[4], r) }
      if (p[2] ~ /^ours-(text|json|textw2|jsonw2|filter)$/ && rss[k] > maxrss) maxrss = rss[k]
      if (p[2] == "ours-xform" && (c "/ours-json" tail) in rate) xf = xf sprintf(" %s/%s %.2fx", p[3], p[4], rate[k] / rate[c "/ours-json" tail])
      if (p[2] == "ours-enrich" && (c "/ours-json" tail) in rate) en = en sprintf(" %s/%s %.2fx", p[3], p[4], rate[k] / rate[c "/ours-json" tail])
    }
    printf "- %s: text >= 20x golang dnstap -q: %s (--writers 1: %s)\n", c, lo == "" ? "not measured" : sprintf("%.1f–%.1fx", lo, hi), lo1 == "" ? "–" : sprintf("%.1f–%.1fx", lo1, hi1)
    printf "- %s: JSON >= 500x python dnstap_receiver 4.7: %s\n", c, lop == "" ? "not measured" : sprintf("%.0f–%.0fx", lop, hip)
    printf "- %s: filter-reject >= 10 M msgs/s:%s\n", c, fl == "" ? " not measured" : fl; fl = ""
    printf "- %s: peak RSS <= 32 MB (text, JSON, filter rows): %.1f MB\n", c, maxrss / 1024
    if (xf != "") printf "- %s: transforms >= 0.9x plain JSON (--writers 1):%s\n", c, xf
    if (en != "") printf "- %s: latency + eTLD+1 + Crypto-PAn >= 0.85x plain JSON (--writers 1):%s\n", c, en
    en = ""
  }
}' "$results"

if ((failed)); then
  echo "perf.sh: FAILED: a configuration failed or lost messages (see above)" >&2
  exit 1
fi
