//! The forward output over several collectors (`remote: [...]`, `loadbalance:`), against four
//! real syslog-ng processes on loopback ports (`support::syslog`, as in tests/forward.rs).
//! Checks that:
//! * `round-robin` delivers every record exactly once and gives each collector 15..35 %;
//! * `hash` by client address keeps each client on one collector, with a spread that is not
//!   degenerate; with one collector killed, only its clients move, each to one collector (its
//!   own next choice), spread over the other three, and they come back when it does;
//! * with `failover` and `round-robin`, a collector killed mid-run and started again 10 s
//!   later loses nothing (every record arrives at least once; duplicates are counted, within
//!   `resent`, and reported) and receives records again once it is back (`failover`: the
//!   collector picked at start takes the turn back);
//! * all four killed for 10 s: with `block` nothing is lost; with `drop-newest` the drop
//!   counter equals the records that never arrived.
//!
//! Without syslog-ng in `PATH` the tests skip with a NOTICE, or fail under `CI=true`
//! (`support::skip`).

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{write_control_frame, write_data_frame, ControlType};
use support::receiver::{
    free_port, metrics_page, send_bidi, wait_until, Ending, Receiver, Target, TempDir,
};
use support::syslog::{have_syslog_ng, Collector};

/// How long the killed collector stays away (the figure).
const OUTAGE: Duration = Duration::from_secs(10);

/// `(query name, client address)` of every line `c` received.
fn records(c: &Collector) -> Vec<(String, String)> {
    c.lines()
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            let q = v["query-name"].as_str().expect("query-name").to_string();
            let ip = v["source-ip"].as_str().unwrap_or("").to_string();
            (q, ip)
        })
        .collect()
}

/// A dnstap CLIENT_QUERY for `q{i}.lb.test.` from client 10.0.{i/256 % 8}.{i % 256}
/// ([`support::pb::client_query`]).
fn payload(i: u64) -> Vec<u8> {
    support::pb::client_query(
        i,
        "lb-test",
        "lb",
        [10, 0, ((i >> 8) % 8) as u8, i as u8],
        None,
    )
}

/// Four collectors and a receiver forwarding to them with `loadbalance`.
struct Fleet {
    _tmp: TempDir,
    collectors: Vec<Collector>,
    rx: Option<Receiver>,
    rport: u16,
    mport: u16,
    /// One fleet at a time (declared last, so dropped after the processes): four tests
    /// each running four syslog-ng and a receiver at once on two cores skew the spread
    /// they measure.
    _one_at_a_time: MutexGuard<'static, ()>,
}

static ONE_FLEET: Mutex<()> = Mutex::new(());

impl Fleet {
    fn start(tag: &str, loadbalance: &str) -> Fleet {
        Fleet::start_with(tag, loadbalance, 4 << 20)
    }

    /// With this `buffer-size` (the memory bound counts each 4 KiB chunk's 68 KiB
    /// allocation, so 4 MiB holds about 60 chunks).
    fn start_with(tag: &str, loadbalance: &str, buffer_size: usize) -> Fleet {
        // A test that failed while holding the lock poisons it; the next one still runs.
        let one = ONE_FLEET.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = TempDir::new(tag);
        let collectors: Vec<Collector> = (0..4)
            .map(|i| Collector::start(&tmp.path(&format!("c{i}")), free_port()))
            .collect();
        let remote: Vec<String> = collectors
            .iter()
            .map(|c| format!("127.0.0.1:{}", c.port))
            .collect();
        let conf = tmp.path("receiver.yaml");
        std::fs::write(
            &conf,
            format!(
                "forward-to:\n  enable: true\n  remote: [{}]\n  loadbalance: {loadbalance}\n  \
                 chunk-size: 4096\n  buffer-size: {buffer_size}\n  replay-window: 8388608\n  \
                 backoff-init: 0.1\n  backoff-max: 1\n  shutdown-timeout: 20\n",
                remote.join(", ")
            ),
        )
        .unwrap();
        let rport = free_port();
        let mport = free_port();
        let (rp, metrics) = (rport.to_string(), format!("127.0.0.1:{mport}"));
        let rx = Receiver::start(&[
            "-l",
            "127.0.0.1",
            "-p",
            &rp,
            "--io",
            "epoll",
            "--threads",
            "1",
            "--metrics",
            &metrics,
            "-c",
            conf.to_str().unwrap(),
        ]);
        Fleet {
            _tmp: tmp,
            collectors,
            rx: Some(rx),
            rport,
            mport,
            _one_at_a_time: one,
        }
    }

    fn counts(&self) -> Vec<usize> {
        self.collectors.iter().map(Collector::count).collect()
    }

    fn total(&self) -> usize {
        self.counts().iter().sum()
    }

    /// Waits until every collector together holds at least `n` lines.
    fn wait_total(&self, n: usize) {
        wait_until(
            Duration::from_secs(90),
            || self.total() >= n,
            || format!("collectors have {:?} lines, want {n} in all", self.counts()),
        );
    }

    /// Stops the receiver (every record handed over) and drains the collectors; returns the
    /// receiver's stderr and every collector's records.
    fn finish(&mut self) -> (String, Received) {
        let fin = self.rx.take().unwrap().stop();
        assert_eq!(fin.code, Some(0), "{}", fin.stderr);
        for c in &mut self.collectors {
            c.drain();
            assert_eq!(c.bad(), "", "every line parses as JSON");
        }
        let got = self.collectors.iter().map(records).collect();
        (fin.stderr, got)
    }
}

/// A Frame Streams connection to the receiver, records sent in paced batches.
struct Feed {
    conn: Box<dyn support::receiver::Conn>,
    next: u64,
}

impl Feed {
    fn open(port: u16) -> Feed {
        Feed {
            conn: send_bidi(&Target::Tcp(port), &[], Ending::Open).unwrap(),
            next: 0,
        }
    }

    /// Sends the next `n` records in batches of 500.
    fn send(&mut self, n: u64) {
        let end = self.next + n;
        let mut out = Vec::new();
        while self.next < end {
            out.clear();
            let to = (self.next + 500).min(end);
            for i in self.next..to {
                write_data_frame(&payload(i), &mut out);
            }
            self.conn.write_all(&out).unwrap();
            self.next = to;
            // Deliberate: a moderate pace, so that the run spans the collectors' events.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// STOP, then wait for FINISH (the receiver has read everything).
    fn close(mut self) {
        let mut out = Vec::new();
        write_control_frame(ControlType::Stop, None, &mut out);
        self.conn.write_all(&out).unwrap();
        let mut b = [0u8; 64];
        let mut got = 0;
        let t0 = Instant::now();
        while got < 12 && t0.elapsed() < Duration::from_secs(120) {
            match self.conn.read(&mut b) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(_) => {}
            }
        }
        assert!(got >= 12, "no FINISH from the receiver");
    }
}

/// `(query name, client address)` of every line each collector received.
type Received = Vec<Vec<(String, String)>>;

/// How many times each of `0..total` arrived over all collectors; panics on a foreign
/// record.
fn times_seen(got: &[Vec<(String, String)>], total: u64) -> Vec<u32> {
    let mut seen = vec![0u32; total as usize];
    for (q, _) in got.iter().flatten() {
        let i = record_index(q) as usize;
        assert!(i < seen.len(), "unexpected record {q}");
        seen[i] += 1;
    }
    seen
}

/// [`times_seen`], and panics on a missing record.
fn tally(got: &[Vec<(String, String)>], total: u64) -> Vec<u32> {
    let seen = times_seen(got, total);
    let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).collect();
    assert!(
        missing.is_empty(),
        "{} records lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    seen
}

/// Per-collector counters from the final `-v` lines: `collector -> (key -> value)`.
fn collector_counters(stderr: &str) -> HashMap<String, HashMap<String, u64>> {
    let mut m = HashMap::new();
    for l in stderr
        .lines()
        .filter(|l| l.contains("collector-counters: "))
    {
        let mut kv: HashMap<String, u64> = HashMap::new();
        let mut name = String::new();
        for (k, v) in l.split(' ').filter_map(|t| t.split_once('=')) {
            if k == "collector" {
                name = v.to_string();
            } else if let Ok(n) = v.parse() {
                kv.insert(k.to_string(), n);
            }
        }
        m.insert(name, kv);
    }
    m
}

#[test]
fn round_robin_spreads_every_record_exactly_once_over_four_collectors() {
    if !have_syslog_ng("round_robin_spreads_every_record_exactly_once_over_four_collectors") {
        return;
    }
    let total = 40_000u64;
    let mut fleet = Fleet::start("lb-rr", "round-robin");
    let mut feed = Feed::open(fleet.rport);
    feed.send(total);
    feed.close();
    fleet.wait_total(total as usize);
    let page = metrics_page(fleet.mport);
    let (stderr, got) = fleet.finish();
    let seen = tally(&got, total);
    assert!(seen.iter().all(|&n| n == 1), "a record arrived twice");
    let shares: Vec<f64> = got.iter().map(|g| g.len() as f64 / total as f64).collect();
    eprintln!("round-robin shares {shares:?}");
    for s in &shares {
        assert!((0.15..=0.35).contains(s), "uneven spread {shares:?}");
    }
    // Per collector: what it acknowledged adds up to the output's delivered count.
    let per = collector_counters(&stderr);
    assert_eq!(per.len(), 4, "{stderr}");
    let sum: u64 = per.values().map(|c| c["delivered"]).sum();
    assert_eq!(sum, total, "{per:?}");
    assert!(
        page.contains("dnstap_receiver_output_collector_records_written_total{output=\"forward"),
        "{page}"
    );
}

#[test]
fn hash_by_client_ip_keeps_each_client_on_one_collector() {
    if !have_syslog_ng("hash_by_client_ip_keeps_each_client_on_one_collector") {
        return;
    }
    let total = 40_000u64;
    let mut fleet = Fleet::start("lb-hash", "hash\n  hash-key: client-ip");
    let mut feed = Feed::open(fleet.rport);
    feed.send(total);
    feed.close();
    fleet.wait_total(total as usize);
    let (_stderr, got) = fleet.finish();
    let seen = tally(&got, total);
    assert!(seen.iter().all(|&n| n == 1), "a record arrived twice");
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (c, recs) in got.iter().enumerate() {
        for (_, ip) in recs {
            let o = *owner.entry(ip.as_str()).or_insert(c);
            assert_eq!(o, c, "client {ip} on collectors {o} and {c}");
        }
    }
    assert_eq!(owner.len(), 2048, "every client address seen");
    let shares: Vec<f64> = got.iter().map(|g| g.len() as f64 / total as f64).collect();
    eprintln!("hash shares {shares:?}");
    for s in &shares {
        assert!((0.10..=0.40).contains(s), "degenerate spread {shares:?}");
    }
}

/// A per-collector counter of the metrics page: the sample of `family` labelled with the
/// collector on `port`.
fn collector_metric(page: &str, family: &str, port: u16) -> u64 {
    let label = format!("collector=\"127.0.0.1:{port}\"");
    page.lines()
        .filter(|l| l.starts_with(family) && l.contains(&label))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

impl Fleet {
    /// Kills collector `i` (SIGKILL) and waits until the receiver has noticed (a connection
    /// failure counted for it), so that what is sent next is sent while it is known down.
    fn kill(&mut self, i: usize) {
        let family = "dnstap_receiver_output_collector_connection_failures_total";
        let port = self.collectors[i].port;
        let before = collector_metric(&metrics_page(self.mport), family, port);
        self.collectors[i].kill();
        wait_until(
            Duration::from_secs(30),
            || collector_metric(&metrics_page(self.mport), family, port) > before,
            || format!("the receiver never noticed collector {i} was killed"),
        );
    }

    /// Sends records in batches of 2 000 until collector `i` has more than `before` lines
    /// (bounded); returns how many were sent.
    fn send_until_received(&self, feed: &mut Feed, i: usize, before: usize) -> u64 {
        let t0 = Instant::now();
        let mut sent = 0;
        while self.collectors[i].count() <= before {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the restarted collector {i} never received records again: {:?}",
                self.counts()
            );
            feed.send(2_000);
            sent += 2_000;
        }
        sent
    }
}

/// Records go out before, during and after a collector's outage: 20 000, then the collector
/// with the most lines (with failover: the active one) is killed and 20 000 more go out
/// while it is away for [`OUTAGE`]; once it is started again, records go out until it has
/// received some again. Returns how many times each record arrived, the collectors'
/// records, the killed collector's index and the receiver's counters.
fn outage_run(tag: &str, loadbalance: &str) -> Outage {
    let mut fleet = Fleet::start(tag, loadbalance);
    let mut feed = Feed::open(fleet.rport);
    feed.send(20_000);
    fleet.wait_total(20_000);
    let counts = fleet.counts();
    let victim = (0..4).max_by_key(|&i| counts[i]).unwrap();
    fleet.kill(victim);
    let t_kill = Instant::now();
    feed.send(20_000);
    // Deliberate: the collector stays away for the whole outage.
    std::thread::sleep(OUTAGE.saturating_sub(t_kill.elapsed()));
    fleet.collectors[victim].spawn();
    let before = fleet.collectors[victim].count();
    let mut sent = 40_000;
    sent += fleet.send_until_received(&mut feed, victim, before);
    feed.close();
    // Every record has reached some collector (lines count duplicates too; `tally` checks
    // each record once the receiver has stopped and handed over the rest).
    fleet.wait_total(sent as usize);
    let (stderr, got) = fleet.finish();
    let seen = tally(&got, sent);
    let dups: u32 = seen.iter().map(|&n| n - 1).sum();
    let c = output_counters(&stderr);
    eprintln!(
        "{tag}: {sent} records, {dups} duplicates, per collector {:?}; {:?}; {c:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        collector_counters(&stderr)
    );
    assert!(dups as u64 <= c["resent"], "{dups} duplicates, {c:?}");
    assert_eq!(c["delivered"], sent, "{c:?}");
    assert_eq!(c["dropped"], 0, "{c:?}");
    Outage {
        got,
        victim,
        after_restart: before,
    }
}

/// What [`outage_run`] saw.
struct Outage {
    got: Received,
    victim: usize,
    /// Lines the killed collector had when it was started again.
    after_restart: usize,
}

/// The forward output's counters from the receiver's final `-v` line.
fn output_counters(stderr: &str) -> HashMap<String, u64> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("output-counters: \"forward"))
        .unwrap_or_else(|| panic!("no output-counters line in: {stderr}"));
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

#[test]
fn failover_loses_nothing_when_the_active_collector_is_killed_and_goes_back_to_it() {
    if !have_syslog_ng(
        "failover_loses_nothing_when_the_active_collector_is_killed_and_goes_back_to_it",
    ) {
        return;
    }
    let o = outage_run("lb-fo", "failover");
    // Failover: after the kill, another collector took over; once the killed one (the one
    // picked at start) was back, it took the turn back.
    let others: usize = (0..4)
        .filter(|&i| i != o.victim)
        .map(|i| o.got[i].len())
        .sum();
    assert!(others > 0, "no collector took over");
    assert!(o.got[o.victim].len() > o.after_restart);
}

#[test]
fn round_robin_loses_nothing_when_a_collector_is_killed_and_comes_back() {
    if !have_syslog_ng("round_robin_loses_nothing_when_a_collector_is_killed_and_comes_back") {
        return;
    }
    let o = outage_run("lb-rr-kill", "round-robin");
    assert!(o.got.iter().all(|g| !g.is_empty()));
    assert!(o.got[o.victim].len() > o.after_restart);
}

/// The number in `q{i}.lb.test.`.
fn record_index(q: &str) -> u64 {
    q.strip_prefix('q')
        .and_then(|r| r.strip_suffix(".lb.test."))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected record {q}"))
}

#[test]
fn hash_moves_only_a_killed_collectors_clients_each_to_its_next_choice() {
    if !have_syslog_ng("hash_moves_only_a_killed_collectors_clients_each_to_its_next_choice") {
        return;
    }
    let mut fleet = Fleet::start("lb-hash-kill", "hash\n  hash-key: client-ip");
    let mut feed = Feed::open(fleet.rport);
    feed.send(20_000);
    fleet.wait_total(20_000);
    // Who owns which client before the outage.
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (c, coll) in fleet.collectors.iter().enumerate() {
        for (_, ip) in records(coll) {
            owner.insert(ip, c);
        }
    }
    assert_eq!(owner.len(), 2048);
    let victim = 0;
    fleet.kill(victim);
    let t_kill = Instant::now();
    // Sent while the victim is known down: [20 000, 40 000).
    feed.send(20_000);
    // Deliberate: the collector stays away for the whole outage.
    std::thread::sleep(OUTAGE.saturating_sub(t_kill.elapsed()));
    fleet.collectors[victim].spawn();
    let before = fleet.collectors[victim].count();
    let sent = 40_000 + fleet.send_until_received(&mut feed, victim, before);
    feed.close();
    fleet.wait_total(sent as usize);
    let (_stderr, got) = fleet.finish();
    tally(&got, sent);
    // During the outage: a client of another collector stayed where it was; a client of the
    // victim went to one collector, its own next choice, and those choices spread.
    let mut moved: HashMap<&str, usize> = HashMap::new();
    for (c, recs) in got.iter().enumerate() {
        for (q, ip) in recs {
            if !(20_000..40_000).contains(&record_index(q)) {
                continue;
            }
            let o = owner[ip.as_str()];
            if o != victim {
                assert_eq!(c, o, "client {ip} of collector {o} moved to {c}");
                continue;
            }
            assert_ne!(c, victim, "a record for the down collector arrived there");
            let m = *moved.entry(ip.as_str()).or_insert(c);
            assert_eq!(m, c, "client {ip} of the victim on collectors {m} and {c}");
        }
    }
    let victims = owner.values().filter(|&&o| o == victim).count();
    assert_eq!(moved.len(), victims, "every client of the victim seen");
    let per: Vec<usize> = (0..4)
        .map(|c| moved.values().filter(|&&m| m == c).count())
        .collect();
    eprintln!("hash: the victim's {victims} clients moved to {per:?}");
    for c in (0..4).filter(|&c| c != victim) {
        let share = per[c] as f64 / victims as f64;
        assert!(
            (0.15..=0.55).contains(&share),
            "the victim's clients did not spread: {per:?}"
        );
    }
    assert!(
        got[victim].len() > before,
        "the victim took its clients back"
    );
}

/// All four collectors killed for [`OUTAGE`] while records keep coming, then started again.
/// Returns how many records were sent, how many times each arrived and the receiver's
/// counters.
fn all_down_run(tag: &str, overflow: &str) -> (u64, Vec<u32>, HashMap<String, u64>) {
    // 64 MiB: room for the 10 000 records put back for a resend and about 4 000 more.
    let lb = format!("round-robin\n  overflow: {overflow}");
    let mut fleet = Fleet::start_with(tag, &lb, 64 << 20);
    let mut feed = Feed::open(fleet.rport);
    feed.send(10_000);
    fleet.wait_total(10_000);
    for i in 0..4 {
        fleet.kill(i);
    }
    let t_kill = Instant::now();
    // 60 000 records (about 16 MB of JSON lines in 4 KiB chunks, far more than the buffer
    // holds) while every collector is away: with `block` the sender waits on the receiver's
    // back-pressure.
    let sender = std::thread::spawn(move || {
        feed.send(60_000);
        feed
    });
    // Deliberate: the collectors stay away for the whole outage.
    std::thread::sleep(OUTAGE.saturating_sub(t_kill.elapsed()));
    for c in &mut fleet.collectors {
        c.spawn();
    }
    let feed = sender.join().unwrap();
    feed.close();
    let total = 70_000u64;
    let mport = fleet.mport;
    // Every record is at a collector or counted dropped (lines count duplicates too).
    wait_until(
        Duration::from_secs(90),
        || {
            let dropped = support::receiver::metric(
                &metrics_page(mport),
                "dnstap_receiver_output_dropped_total",
            );
            fleet.total() as u64 + dropped >= total
        },
        || format!("collectors have {:?} lines of {total}", fleet.counts()),
    );
    let (stderr, got) = fleet.finish();
    let seen = times_seen(&got, total);
    let c = output_counters(&stderr);
    eprintln!(
        "{tag}: per collector {:?}; {c:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let dups: u64 = seen.iter().map(|&n| n.saturating_sub(1) as u64).sum();
    assert!(dups <= c["resent"], "{dups} duplicates, {c:?}");
    assert_eq!(c["records"], total, "{c:?}");
    (total, seen, c)
}

#[test]
fn all_collectors_down_with_block_loses_nothing() {
    if !have_syslog_ng("all_collectors_down_with_block_loses_nothing") {
        return;
    }
    let (total, seen, c) = all_down_run("lb-down-block", "block");
    let missing = seen.iter().filter(|&&n| n == 0).count();
    assert_eq!(missing, 0, "records lost; {c:?}");
    assert_eq!(c["dropped"], 0, "{c:?}");
    assert_eq!(c["delivered"], total, "{c:?}");
}

#[test]
fn all_collectors_down_with_drop_newest_counts_exactly_the_shortfall() {
    if !have_syslog_ng("all_collectors_down_with_drop_newest_counts_exactly_the_shortfall") {
        return;
    }
    let (total, seen, c) = all_down_run("lb-down-drop", "drop-newest");
    let missing = seen.iter().filter(|&&n| n == 0).count() as u64;
    assert!(c["dropped"] > 0, "the outage overflowed the buffer: {c:?}");
    assert_eq!(c["dropped"], missing, "drop counter == shortfall; {c:?}");
    assert_eq!(c["delivered"] + c["dropped"], total, "{c:?}");
    assert!(
        c["delivered"] > 10_000,
        "some records of the outage waited: {c:?}"
    );
}
