//! No allocation per message on the path several writers take to a forward output
//! (issue 21): staging a batch (`Stager::stage` into a writer's kept `Staged`) allocates
//! nothing once the buffers reached a batch's size, and the forward output's commit
//! (lines appended to its chunks, full chunks pushed to the buffer) allocates at most once
//! per chunk (a chunk-size buffer when the sender has not given one back yet), never per
//! record. Real frames (a lab capture), JSON; the collector is a loopback listener that
//! reads everything. The Kafka stager is checked the same way (its commit hands each record
//! to librdkafka, whose own copy is documented in src/sink/kafka/mod.rs).

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use dnstap_receiver::format::{FormatKind, Formatter};
use dnstap_receiver::record::Record;
use dnstap_receiver::sink::buffer::{BufferSpec, OverflowPolicy};
use dnstap_receiver::sink::forward::{CollectorAddr, ForwardConf, ForwardOutput, LoadBalance};
use dnstap_receiver::sink::staged::{Staged, StagedOutput};
use dnstap_receiver::sink::Output;
use dnstap_receiver::stats::OutputStats;
use support::alloc::allocations_in;
use support::lab::{capture, capture_payloads};

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

fn conf(port: u16) -> ForwardConf {
    ForwardConf {
        collectors: vec![CollectorAddr {
            host: "127.0.0.1".into(),
            port,
        }],
        loadbalance: LoadBalance::Failover,
        connections_per_host: 1,
        format: FormatKind::Json,
        tls: None,
        connect_timeout: Duration::from_secs(5),
        backoff_init: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(1),
        ttl: None,
        shutdown_timeout: Duration::from_secs(10),
        keepalive: Duration::from_secs(30),
        chunk_bytes: 64 << 10,
        buffer: BufferSpec {
            max_bytes: 64 << 20,
            policy: OverflowPolicy::Block,
            spill: None,
        },
        replay_window: 0,
    }
}

#[test]
fn staging_and_forward_commit_do_not_allocate_per_record() {
    let payloads = capture_payloads(&capture("knot-unix.fstrm"));
    let records: Vec<(Record<'_>, &[u8])> = payloads
        .iter()
        .map(|p| (Record::parse(p).expect("a capture frame decodes"), &p[..]))
        .collect();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    let stats = Arc::new(OutputStats::default());
    let mut out = ForwardOutput::start(&conf(port), Arc::clone(&stats)).unwrap();
    let stager = out.stager();
    let fmt = Formatter::new(FormatKind::Json);
    let mut staged = Staged::default();
    // One batch = 200 records, as a writer would stage and commit it.
    let mut pass = |out: &mut ForwardOutput| {
        for batch in records.chunks(200) {
            staged.clear();
            for (rec, raw) in batch {
                stager.stage(&fmt, rec, raw, &mut staged);
            }
            out.commit(&staged, batch.len() as u64).unwrap();
        }
    };
    // Warm-up: the staging buffers grow to a batch, the buffer's free list fills.
    pass(&mut out);
    let ((), allocs) = allocations_in(|| pass(&mut out));
    // At most one per 64 KiB chunk (~200 JSON lines of this capture); per record would be
    // thousands.
    let n = records.len();
    eprintln!("forward: {allocs} allocations staging and committing {n} records");
    assert!(allocs <= n / 100, "{allocs} allocations for {n} records");
    out.finish().unwrap();
    assert!(reader.join().unwrap() > 0);

    // The Kafka stager: keys and values into the kept buffers, nothing else.
    #[cfg(feature = "kafka")]
    {
        use dnstap_receiver::sink::kafka::{KafkaOutput, KafkaSettings, KeyKind, ValueKind};
        let settings = KafkaSettings {
            name: "kafka test".into(),
            topic: "dnstap".into(),
            key: KeyKind::Qname,
            value: ValueKind::Json,
            overflow: OverflowPolicy::DropNewest,
            spill: None,
            shutdown_timeout: Duration::from_millis(100),
            properties: vec![("bootstrap.servers".into(), "127.0.0.1:9".into())],
        };
        let k = KafkaOutput::new(&settings, Arc::new(OutputStats::default())).unwrap();
        let stager = k.stager();
        let mut stage_all = || {
            for batch in records.chunks(200) {
                staged.clear();
                for (rec, raw) in batch {
                    stager.stage(&fmt, rec, raw, &mut staged);
                }
            }
        };
        stage_all();
        let ((), allocs) = allocations_in(stage_all);
        assert_eq!(allocs, 0, "allocations staging {n} Kafka records");
    }
}
