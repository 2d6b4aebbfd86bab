#!/usr/bin/env bash
# Receiver throughput comparison, in one run, on one machine, with one corpus:
#
#   fstrm_capture        the C reference (libfstrm): copies raw frames to a file, no decoding
#   golang dnstap        text (-q) and JSON (-j) to a file
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
# to golang dnstap (same format). See docs/performance.md.
#
#   scripts/perf.sh                  full run (release build; a few minutes)
#   scripts/perf.sh --smoke          tiny counts, 1 run, debug build: checks that every
#                                    configuration runs and delivers every message (CI)
#
# Options (or environment):
#   --count N        messages per run for fstrm_capture and dnstap_receiver (PERF_COUNT,
#                    default 4,000,000); golang dnstap gets N/10 (it is ~30x slower)
#   --runs R         runs per configuration; medians are reported (PERF_RUNS, default 3)
#   --corpus FILE    replay this .fstrm file (default: loadgen --synth, seed 1, 200k msgs)
#   --only REGEX     only the configurations whose label matches (e.g. 'ours-json.*unix')
#   --out DIR        where outputs go while a run lasts (PERF_DIR, default a temp dir);
#                    use a tmpfs to keep the disk out of the measurement
#   RECEIVER, LOADGEN  binaries (default target/release/..., target/debug/... with --smoke)
#
# It installs nothing: fstrm_capture (fstrm-bin) and dnstap
# (golang-github-dnstap-golang-dnstap-cli) come from .ci/run / the lab's setup.sh; a
# missing one is skipped with a note (an error with --smoke under CI=true).
# Exit status: 0, or 1 if a receiver lost messages or a configuration failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

count="${PERF_COUNT:-4000000}"
runs="${PERF_RUNS:-3}"
corpus=""
only=""
smoke=0
outdir="${PERF_DIR:-}"
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --count) count="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --corpus) corpus="$2"; shift ;;
    --only) only="$2"; shift ;;
    --out) outdir="$2"; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "perf.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if ((smoke)); then
  count="${PERF_COUNT:-30000}"
  runs=1
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

if [[ -z "$corpus" ]]; then
  corpus="$work/corpus.fstrm"
  "$LOADGEN" --synth --seed 1 --write-fstrm "$corpus" 2>/dev/null
  corpus_label="loadgen --synth --seed 1 (200,000 messages)"
else
  corpus_label="$(basename "$corpus")"
fi

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

# measure LABEL RECEIVER_KIND FORMAT TRANSPORT CONNS MESSAGES
# Prints one TSV line: label msgs/s cpu_us_per_msg peak_rss_kb delivered expected
measure() {
  local label="$1" kind="$2" format="$3" transport="$4" conns="$5" n="$6"
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
  esac
  if [[ "$kind" == ours2 ]]; then
    "${cmd[@]}" > "$out2" 2> "$work/rx2.log" &
    receiver_pid2=$!
    "${cmd[@]}" > "$out" 2> "$work/rx.log" &
  elif [[ "$kind" == ours ]]; then
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
  if ! lg="$("$LOADGEN" "${target[@]}" -n "$conns" --count "$n" --json -q "$corpus")"; then
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
    configs+=("ours-text/$transport/$conns ours text $transport $conns")
    configs+=("ours-json/$transport/$conns ours json $transport $conns")
    configs+=("ours-textw2/$transport/$conns ours textw2 $transport $conns")
    configs+=("ours-jsonw2/$transport/$conns ours jsonw2 $transport $conns")
    configs+=("ours-filter/$transport/$conns ours filter $transport $conns")
    configs+=("ours-enrich/$transport/$conns ours enrich $transport $conns")
  done
done
configs+=("ours-json2/tcp/8 ours2 json tcp 8")

have fstrm_capture || missing_tool fstrm_capture "the fstrm_capture baseline"
have dnstap || missing_tool dnstap "golang dnstap"
have ss || missing_tool ss "TCP configurations (ss from iproute2 tells when a port listens)"

results="$work/results.tsv"
: > "$results"
failed=0
echo "perf.sh: corpus $corpus_label; $count messages per run ($golang_count for golang dnstap), $runs run(s) each" >&2
echo "perf.sh: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((r = 1; r <= runs; r++)); do
  for c in "${configs[@]}"; do
    read -r label kind format transport conns <<<"$c"
    [[ -n "$only" && ! "$label" =~ $only ]] && continue
    [[ "$kind" == fstrm_capture ]] && ! have fstrm_capture && continue
    [[ "$kind" == golang ]] && ! have dnstap && continue
    [[ "$transport" == tcp ]] && ! have ss && continue
    n="$count"
    [[ "$kind" == golang ]] && n="$golang_count"
    if line="$(measure "$label" "$kind" "$format" "$transport" "$conns" "$n")"; then
      echo "$line" >> "$results"
      echo "perf.sh: run $r: $line (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      read -r _ _ _ _ delivered expected <<<"$line"
      if [[ "$expected" != filter && "$delivered" != "$expected" ]]; then
        echo "perf.sh: $label: delivered $delivered of $expected" >&2
        failed=1
      fi
    else
      failed=1
    fi
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- the table: medians, ratios ---------------------------------------------------------

awk -F'\t' -v runs="$runs" -v load="$load_after" -v corpus="$corpus_label" '
function median(key, col,    n, i, j, t, a) {
  n = cnt[key]
  for (i = 1; i <= n; i++) a[i] = val[key, i, col]
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  k = $1; if (!(k in cnt)) order[++nk] = k
  cnt[k]++; val[k, cnt[k], 2] = $2; val[k, cnt[k], 3] = $3; val[k, cnt[k], 4] = $4
}
END {
  for (i = 1; i <= nk; i++) { k = order[i]; rate[k] = median(k, 2); cpu[k] = median(k, 3); rss[k] = median(k, 4) }
  printf "Corpus: %s. Medians of %d run(s). Load average after: %s.\n\n", corpus, runs, load
  print "| receiver | output | transport | conns | msgs/s | CPU µs/msg | peak RSS MB | × fstrm_capture | × golang (same format) |"
  print "|---|---|---|---:|---:|---:|---:|---:|---:|"
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, p, "/"); split(p[1], who, "-")
    name = (who[1] == "ours") ? "dnstap_receiver" : (who[1] == "golang") ? "golang dnstap" : "fstrm_capture"
    out = (who[1] == "fstrm_capture") ? "raw frames" : (who[2] == "filter") ? "JSON, qname filter rejecting ~all" : (who[2] == "xform") ? "JSON, 1 M-name drop list + downsample 10 + reducer" : (who[2] == "json2") ? "JSON, 2 processes (--reuse-port)" : (who[2] ~ /w2$/) ? toupper(substr(who[2], 1, 1)) substr(who[2], 2, length(who[2]) - 3) ", --writers 2" : (who[1] == "ours" && who[2] != "filter") ? toupper(substr(who[2], 1, 1)) substr(who[2], 2) ", --writers 1" : toupper(substr(who[2], 1, 1)) substr(who[2], 2)
    base = "fstrm_capture/" p[2] "/" p[3]
    rb = (base in rate && k != base) ? sprintf("%.2f", rate[k] / rate[base]) : "–"
    fmt = who[2]; sub(/(2|w2)$/, "", fmt)
    g = (who[1] == "ours" && who[2] != "filter" && who[2] != "xform") ? "golang-" fmt "/" p[2] "/" p[3] : ""
    plain = "ours-json/" p[2] "/" p[3]
    out = (who[1] == "fstrm_capture") ? "raw frames" : (who[2] == "filter") ? "JSON, qname filter rejecting ~all" : (who[2] == "enrich") ? sprintf("JSON + latency + eTLD+1 + Crypto-PAn, --writers 1 (%s× plain JSON)", (plain in rate) ? sprintf("%.2f", rate[k] / rate[plain]) : "–") : (who[2] == "json2") ? "JSON, 2 processes (--reuse-port)" : (who[2] ~ /w2$/) ? toupper(substr(who[2], 1, 1)) substr(who[2], 2, length(who[2]) - 3) ", --writers 2" : (who[1] == "ours" && who[2] != "filter") ? toupper(substr(who[2], 1, 1)) substr(who[2], 2) ", --writers 1" : toupper(substr(who[2], 1, 1)) substr(who[2], 2)
    base = "fstrm_capture/" p[2] "/" p[3]
    rb = (base in rate && k != base) ? sprintf("%.2f", rate[k] / rate[base]) : "–"
    fmt = who[2]; sub(/(2|w2)$/, "", fmt)
    g = (who[1] == "ours" && who[2] != "filter" && who[2] != "enrich") ? "golang-" fmt "/" p[2] "/" p[3] : ""
    rg = (g != "" && g in rate) ? sprintf("%.1f", rate[k] / rate[g]) : "–"
    printf "| %s | %s | %s | %s | %.2f M | %.3f | %.1f | %s | %s |\n", name, out, p[2], p[3], rate[k] / 1e6, cpu[k], rss[k] / 1024, rb, rg
  }
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, p, "/")
    if (p[1] != "ours-xform") continue
    j = "ours-json/" p[2] "/" p[3]
    if (!(j in rate)) continue
    if (!header++) print "\nJSON with transforms beside plain JSON (one writer each; target >= 0.9x the rate):\n"
    printf "- %s/%s: %.2f M msgs/s = %.2fx plain JSON (%.2f M); CPU %.3f us/msg against %.3f\n", p[2], p[3], rate[k] / 1e6, rate[k] / rate[j], rate[j] / 1e6, cpu[k], cpu[j]
  }
}' "$results"

if ((failed)); then
  echo "perf.sh: FAILED: a configuration failed or lost messages (see above)" >&2
  exit 1
fi
