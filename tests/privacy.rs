//! The `user-privacy` transform against independent oracles and against every output.
//!
//! - Crypto-PAn equals the `yacryptopan` Python package (installed at test time into a venv,
//!   support::pyvenv) on 10 000 IPv4 and 10 000 IPv6 addresses with a fixed key, and keeps
//!   the shared prefix length of random pairs; the `hmac-sha256` pseudonym equals Python's
//!   own `hmac` on the mapping docs/transforms.md defines.
//! - A synthetic stream of client queries and responses (IPv4 and IPv6 clients, EDNS Client
//!   Subnet in both messages, RPZ `CLIENT_IP` policies, long qnames) goes through a live
//!   receiver with `anonymize-ip`, `crypto-pan` and `minimize-qname`; stdout (json-full),
//!   three forwarded streams to loopback listeners (text, json, yaml-full), Kafka (json
//!   values, client-ip keys; when tansu is installed), the metrics page and the log are
//!   searched for every original client address, client subnet and qname: none is found,
//!   and the expected pseudonyms are.

mod support;

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnstap_receiver::transform::cryptopan::CryptoPan;
use support::receiver::{free_port, http_get, send_bidi, Ending, Receiver, Target, TempDir};

const CHECK: &str = "privacy";

/// The fixed key of the comparisons (the key `yacryptopan`'s own example uses).
fn key() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const ORACLE: &str = r#"
import sys, hmac, hashlib, ipaddress
from yacryptopan import CryptoPAn
key = bytes(range(32))
cp = CryptoPAn(key)
for line in sys.stdin:
    a = line.strip()
    if not a:
        continue
    ip = ipaddress.ip_address(a)
    pan = cp.anonymize(a)
    mac = hmac.new(key, ip.packed, hashlib.sha256).digest()[:len(ip.packed)]
    print(a + " " + str(ipaddress.ip_address(pan)) + " " + str(ipaddress.ip_address(mac)))
"#;

#[test]
fn crypto_pan_and_hmac_equal_python_on_20k_addresses() {
    let Some(py) = support::pyvenv::python(CHECK, "cryptopan", &["yacryptopan==1.0.2"]) else {
        return;
    };
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut addrs: Vec<String> = vec![
        "0.0.0.0".into(),
        "255.255.255.255".into(),
        "192.0.2.1".into(),
        "::".into(),
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
        "2001:db8::1".into(),
        "::ffff:192.0.2.1".into(),
    ];
    for _ in 0..10_000 {
        addrs.push(Ipv4Addr::from(rng.next() as u32).to_string());
        let v6 = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        addrs.push(Ipv6Addr::from(v6).to_string());
    }
    let input = addrs.join("\n");
    let out = support::pyvenv::run(&py, ORACLE, &[], input.as_bytes());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), addrs.len());
    let pan = CryptoPan::new(&key());
    let hmac = dnstap_receiver::transform::privacy::Pseudonym::hmac_sha256(&key());
    let (mut v4, mut v6) = (0, 0);
    for (a, line) in addrs.iter().zip(&lines) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], a);
        let ip: std::net::IpAddr = a.parse().unwrap();
        let (got_pan, got_mac): (std::net::IpAddr, std::net::IpAddr) = match ip {
            std::net::IpAddr::V4(x) => {
                v4 += 1;
                let mut m = x.octets();
                hmac.apply(&mut m);
                (
                    Ipv4Addr::from(pan.ipv4(x.octets())).into(),
                    Ipv4Addr::from(m).into(),
                )
            }
            std::net::IpAddr::V6(x) => {
                v6 += 1;
                let mut m = x.octets();
                hmac.apply(&mut m);
                (
                    Ipv6Addr::from(pan.ipv6(x.octets())).into(),
                    Ipv6Addr::from(m).into(),
                )
            }
        };
        assert_eq!(
            got_pan,
            f[1].parse::<std::net::IpAddr>().unwrap(),
            "crypto-pan of {a}"
        );
        assert_eq!(
            got_mac,
            f[2].parse::<std::net::IpAddr>().unwrap(),
            "hmac-sha256 of {a}"
        );
    }
    assert!(v4 >= 10_000 && v6 >= 10_000, "{v4} IPv4, {v6} IPv6");
}

#[test]
fn crypto_pan_keeps_the_shared_prefix_length_of_random_pairs() {
    let pan = CryptoPan::new(&key());
    let mut rng = XorShift(0xfeed_beef_dead_cafe);
    for _ in 0..5_000 {
        // IPv6: b shares exactly k leading bits with a.
        let a = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        let r = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        let k = (rng.next() % 129) as u32;
        let b = if k == 128 {
            a
        } else {
            let low = u128::MAX >> k; // bits k.. of the address
            (a & !low) | ((!a) & (1u128 << (127 - k))) | (r & (low >> 1))
        };
        assert_eq!((a ^ b).leading_zeros(), k);
        let x = u128::from_be_bytes(pan.ipv6(a.to_be_bytes()));
        let y = u128::from_be_bytes(pan.ipv6(b.to_be_bytes()));
        assert_eq!((x ^ y).leading_zeros(), k, "{a:032x} {b:032x}");
        // IPv4 from the top 32 bits of each.
        let (a4, b4) = ((a >> 96) as u32, (b >> 96) as u32);
        let x4 = u32::from_be_bytes(pan.ipv4(a4.to_be_bytes()));
        let y4 = u32::from_be_bytes(pan.ipv4(b4.to_be_bytes()));
        assert_eq!((x4 ^ y4).leading_zeros(), (a4 ^ b4).leading_zeros());
    }
}

// ---------------------------------------------------------------------------------------
// The synthetic stream.

use support::pb::{field_bytes, field_varint};

/// A DNS message for `qname` with an OPT record carrying Client Subnet `ecs` (family,
/// source prefix, address bytes); a response has one A answer.
fn dns(qname: &str, response: bool, ecs: (u16, u8, &[u8])) -> Vec<u8> {
    let flags: u16 = if response { 0x8180 } else { 0x0100 };
    let mut m = vec![0xab, 0xcd];
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, u8::from(response), 0, 0, 0, 1]);
    for l in qname.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if response {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7]);
    }
    let (family, source, addr) = ecs;
    let mut opt = Vec::new();
    opt.extend_from_slice(&8u16.to_be_bytes());
    opt.extend_from_slice(&((4 + addr.len()) as u16).to_be_bytes());
    opt.extend_from_slice(&family.to_be_bytes());
    opt.push(source);
    opt.push(if response { source } else { 0 });
    opt.extend_from_slice(addr);
    m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
    m.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    m.extend_from_slice(&opt);
    m
}

/// One client of the stream: its address, the subnet it sends as ECS, its qname.
struct Client {
    addr: Vec<u8>,
    ecs: Vec<u8>,
    source: u8,
    qname: String,
}

impl Client {
    fn family(&self) -> u16 {
        if self.addr.len() == 4 {
            1
        } else {
            2
        }
    }

    fn addr_text(&self) -> String {
        ip_text(&self.addr)
    }

    /// The subnet as the full formats print it (`192.0.2.0/24`).
    fn ecs_text(&self) -> String {
        let mut full = vec![0u8; self.addr.len()];
        full[..self.ecs.len()].copy_from_slice(&self.ecs);
        format!("{}/{}", ip_text(&full), self.source)
    }
}

fn ip_text(a: &[u8]) -> String {
    match a.len() {
        4 => Ipv4Addr::from(<[u8; 4]>::try_from(a).unwrap()).to_string(),
        _ => Ipv6Addr::from(<[u8; 16]>::try_from(a).unwrap()).to_string(),
    }
}

fn clients(n: usize) -> Vec<Client> {
    let mut rng = XorShift(0x5eed_0fc1_1e47);
    (0..n)
        .map(|i| {
            let v6 = i % 3 == 2;
            let (addr, source) = if v6 {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                for b in &mut a[4..] {
                    *b = rng.next() as u8;
                }
                a[15] |= 1;
                (a.to_vec(), 56u8)
            } else {
                let r = rng.next();
                (
                    vec![10, (r >> 8) as u8, (r >> 16) as u8, (r as u8) | 1],
                    24u8,
                )
            };
            let ecs = addr[..source as usize / 8].to_vec();
            Client {
                addr,
                ecs,
                source,
                qname: format!("host{i}.user{i}.secret.example.co.uk"),
            }
        })
        .collect()
}

/// Per client: a CLIENT_QUERY, and a CLIENT_RESPONSE carrying both messages (as knot
/// does) and, for every other client, an RPZ policy that matched its address.
fn payloads(clients: &[Client]) -> Vec<Vec<u8>> {
    let server_v4 = [192u8, 0, 2, 53];
    let server_v6 = [0x20u8, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];
    let mut out = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let server: &[u8] = if c.addr.len() == 4 {
            &server_v4
        } else {
            &server_v6
        };
        let ecs = (c.family(), c.source, c.ecs.as_slice());
        let q = dns(&c.qname, false, ecs);
        let r = dns(&c.qname, true, ecs);
        for (mtype, response) in [(5u64, false), (6u64, true)] {
            let mut m = Vec::new();
            field_varint(1, mtype, &mut m);
            field_varint(2, u64::from(c.family()), &mut m);
            field_varint(3, 1, &mut m);
            field_bytes(4, &c.addr, &mut m);
            field_bytes(5, server, &mut m);
            field_varint(6, 40_000 + i as u64, &mut m);
            field_varint(7, 53, &mut m);
            field_varint(8, 1_800_000_000 + i as u64, &mut m);
            field_bytes(10, &q, &mut m);
            if response {
                field_varint(12, 1_800_000_000 + i as u64, &mut m);
                field_bytes(14, &r, &mut m);
                if i % 2 == 0 {
                    let mut p = Vec::new();
                    field_bytes(1, b"RPZ", &mut p);
                    field_varint(3, 1, &mut p);
                    field_varint(4, 2, &mut p);
                    field_bytes(5, &c.addr, &mut p);
                    field_bytes(15, &p, &mut m);
                }
            }
            let mut d = Vec::new();
            field_bytes(1, b"privacy-test", &mut d);
            field_bytes(14, &m, &mut d);
            field_varint(15, 1, &mut d);
            out.push(d);
        }
    }
    out
}

/// A loopback TCP listener that keeps what every connection sends.
struct Listener {
    port: u16,
    got: Arc<Mutex<Vec<u8>>>,
    _thread: JoinHandle<()>,
}

impl Listener {
    fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let thread = std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let g = g.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => g.lock().unwrap().extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        Listener {
            port,
            got,
            _thread: thread,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.got.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until `n` lines arrived.
    fn wait_lines(&self, n: usize, what: &str) {
        support::receiver::wait_until(
            Duration::from_secs(60),
            || self.text().lines().count() >= n,
            || format!("{what}: {} of {n} lines", self.text().lines().count()),
        );
    }

    /// Waits (bounded) until `n` YAML documents arrived.
    fn wait_docs(&self, n: usize, what: &str) {
        support::receiver::wait_until(
            Duration::from_secs(60),
            || self.text().matches("---").count() >= n,
            || {
                format!(
                    "{what}: {} of {n} documents",
                    self.text().matches("---").count()
                )
            },
        );
    }
}

/// Whether `needle` occurs in `hay` as a whole address or name (not inside a longer
/// number, address or name).
fn has_token(hay: &str, needle: &str) -> bool {
    let b = hay.as_bytes();
    let tokenish = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b':';
    hay.match_indices(needle).any(|(i, _)| {
        let end = i + needle.len();
        let before_ok = i == 0 || !tokenish(b[i - 1]);
        let after_ok = match b.get(end) {
            None => true,
            // A name's trailing dot ends it.
            Some(b'.') => !b.get(end + 1).is_some_and(u8::is_ascii_alphanumeric),
            Some(&c) => !(c.is_ascii_alphanumeric() || c == b':'),
        };
        before_ok && after_ok
    })
}

#[test]
fn no_output_shows_an_original_client_address_subnet_or_qname() {
    const N: usize = 300;
    let dir = TempDir::new("privacy-outputs");
    let key_file = dir.path("privacy.key");
    std::fs::write(&key_file, key()).unwrap();
    let clients = clients(N);
    let payloads = payloads(&clients);
    let records = payloads.len();

    let text = Listener::start();
    let json = Listener::start();
    let yaml = Listener::start();
    let kafka = kafka_broker(&dir);
    let mut outputs = format!(
        "outputs:\n  - stdout:\n      format: json-full\n\
         \x20 - forward:\n      remote-address: 127.0.0.1\n      remote-port: {}\n      format: text\n\
         \x20 - forward:\n      remote-address: 127.0.0.1\n      remote-port: {}\n      format: json\n\
         \x20 - forward:\n      remote-address: 127.0.0.1\n      remote-port: {}\n      format: yaml-full\n",
        text.port, json.port, yaml.port
    );
    if let Some(k) = &kafka {
        outputs.push_str(&format!(
            "  - kafka:\n      brokers: {}\n      topic: dnstap\n      key: client-ip\n      value: json\n",
            k.addr()
        ));
    }
    let cfg = dir.path("receiver.yaml");
    std::fs::write(
        &cfg,
        format!(
            "{outputs}transforms:\n  user-privacy:\n    anonymize-ip: true\n    pseudonymize-ip: crypto-pan\n    key-file: {}\n    minimize-qname: true\n",
            key_file.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--metrics",
        &format!("127.0.0.1:{metrics_port}"),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    send_bidi(&Target::Tcp(port), &payloads, Ending::Stop);
    text.wait_lines(records, "forward text");
    json.wait_lines(records, "forward json");
    yaml.wait_docs(records, "forward yaml-full");
    let kafka_got = kafka.as_ref().map(|k| k.consume(records));
    let (status, metrics) = http_get(metrics_port, "/metrics", None);
    assert_eq!(status, 200);
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    let stdout = String::from_utf8_lossy(&fin.stdout).into_owned();
    assert_eq!(stdout.lines().count(), records, "stdout json-full lines");

    let mut outputs: Vec<(&str, String)> = vec![
        ("stdout json-full", stdout.clone()),
        ("forward text", text.text()),
        ("forward json", json.text()),
        ("forward yaml-full", yaml.text()),
        ("metrics page", metrics),
        ("log", fin.stderr.clone()),
    ];
    if let Some(got) = &kafka_got {
        assert_eq!(got.len(), records, "Kafka records");
        let keys: String = got.iter().map(|(k, _)| format!("{k}\n")).collect();
        let values: String = got.iter().map(|(_, v)| format!("{v}\n")).collect();
        outputs.push(("kafka keys", keys));
        outputs.push(("kafka values", values));
    }

    // Nothing shows an original.
    for (what, out) in &outputs {
        for c in &clients {
            for needle in [c.addr_text(), c.ecs_text(), c.qname.clone()] {
                assert!(!has_token(out, &needle), "{what} shows {needle}");
            }
        }
        assert!(
            !out.contains(".secret."),
            "{what} shows a label of a full qname"
        );
    }

    // Every output shows the pseudonyms: the client's Crypto-PAn address cut to 24 / 56
    // bits, its subnet the same, and the registered domain.
    let pan = CryptoPan::new(&key());
    let expected = |c: &Client| -> String {
        let mut a = c.addr.clone();
        if a.len() == 4 {
            let x = pan.ipv4(<[u8; 4]>::try_from(&a[..]).unwrap());
            a.copy_from_slice(&x);
            a[3] = 0;
        } else {
            let x = pan.ipv6(<[u8; 16]>::try_from(&a[..]).unwrap());
            a.copy_from_slice(&x);
            a[7..].fill(0);
        }
        ip_text(&a)
    };
    for (what, out) in &outputs {
        if what.starts_with("metrics") || what.starts_with("log") {
            continue;
        }
        for c in clients.iter().take(20) {
            assert!(
                has_token(out, &expected(c)),
                "{what} lacks the pseudonym {}",
                expected(c)
            );
        }
        if *what != "kafka keys" {
            assert!(
                out.contains("example.co.uk"),
                "{what} lacks the registered domain"
            );
        }
    }
    for c in clients.iter().take(20) {
        let subnet = format!("{}/{}", expected(c), c.source);
        assert!(
            stdout.contains(&subnet),
            "json-full lacks the subnet {subnet}"
        );
    }
    // The policy value of the CLIENT_IP records is the pseudonym too.
    let first: serde_json::Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        first["message"]["policy"]["value"].as_str(),
        Some(expected(&clients[0]).as_str()),
        "{first}"
    );
    // Both messages of a response were rewritten (knot-style responses carry the query).
    assert_eq!(
        first["message"]["query_message"]["question"][0]["name"],
        "example.co.uk."
    );
    assert_eq!(
        first["message"]["response_message"]["question"][0]["name"],
        "example.co.uk."
    );
}

// ---------------------------------------------------------------------------------------
// Kafka (when tansu is installed and the kafka feature is on).

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    use std::process::{Child, Command, Stdio};

    pub struct Broker {
        port: u16,
        child: Child,
    }

    impl Drop for Broker {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Broker {
        pub fn addr(&self) -> String {
            format!("127.0.0.1:{}", self.port)
        }

        pub fn start(dir: &TempDir) -> Option<Broker> {
            let cargo_bin: Vec<std::path::PathBuf> = std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".cargo/bin"))
                .into_iter()
                .collect();
            let bin = support::skip::need_program_in(
                "privacy: kafka output",
                "tansu",
                &cargo_bin,
                "cargo install --locked tansu --features dynostore",
            )?;
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let log = std::fs::File::create(dir.path("tansu.log")).unwrap();
            let child = Command::new(bin)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args(["--storage-engine", "memory://tansu/"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn tansu");
            let b = Broker { port, child };
            support::receiver::wait_until(
                Duration::from_secs(30),
                || std::net::TcpStream::connect(b.addr()).is_ok(),
                || "tansu did not listen".to_string(),
            );
            b.create_topic("dnstap");
            Some(b)
        }

        fn config(&self) -> ClientConfig {
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", self.addr());
            c
        }

        fn create_topic(&self, topic: &str) {
            let admin: AdminClient<DefaultClientContext> = self.config().create().unwrap();
            let t0 = Instant::now();
            loop {
                let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
                let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
                let r = futures_block_on(admin.create_topics([&new], &opts));
                if matches!(&r, Ok(v) if v.iter().all(|x| x.is_ok())) {
                    return;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "create topic: {r:?}"
                );
                // A poll step; the loop has a deadline.
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// (key, value) of the topic's records, until `want` came (bounded).
        pub fn consume(&self, want: usize) -> Vec<(String, String)> {
            let consumer: BaseConsumer = self
                .config()
                .set("group.id", format!("privacy-{}", std::process::id()))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "50")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("dnstap", 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
            let mut got = Vec::new();
            let t0 = Instant::now();
            while got.len() < want && t0.elapsed() < Duration::from_secs(90) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    got.push((
                        String::from_utf8_lossy(m.key().unwrap_or(&[])).into_owned(),
                        String::from_utf8_lossy(m.payload().unwrap_or(&[])).into_owned(),
                    ));
                }
            }
            got
        }
    }

    /// Runs the admin client's future on this thread (librdkafka's thread completes it).
    fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        let t0 = Instant::now();
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "admin request timed out"
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

#[cfg(feature = "kafka")]
fn kafka_broker(dir: &TempDir) -> Option<kafka::Broker> {
    kafka::Broker::start(dir)
}

#[cfg(not(feature = "kafka"))]
struct NoBroker;
#[cfg(not(feature = "kafka"))]
impl NoBroker {
    fn addr(&self) -> String {
        String::new()
    }
    fn consume(&self, _: usize) -> Vec<(String, String)> {
        Vec::new()
    }
}
#[cfg(not(feature = "kafka"))]
fn kafka_broker(_: &TempDir) -> Option<NoBroker> {
    None
}

#[test]
fn raw_kafka_values_behind_user_privacy_are_a_config_error() {
    let dir = TempDir::new("privacy-raw");
    let cfg = dir.path("c.yaml");
    std::fs::write(
        &cfg,
        "outputs:\n  - stdout: {format: json}\n  - kafka:\n      brokers: 127.0.0.1:1\n      topic: t\n      value: raw\ntransforms:\n  user-privacy: {anonymize-ip: true}\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::receiver::BIN)
        .arg("-c")
        .arg(&cfg)
        .arg("-r")
        .arg(support::lab::capture("nsd-unix.fstrm"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("transforms.user-privacy") && err.contains("value: raw"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing is printed");
    // A key file of the wrong length is a config error that names the file.
    let key = dir.path("short.key");
    std::fs::write(&key, [1u8; 20]).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "transforms:\n  user-privacy: {{pseudonymize-ip: hmac-sha256, key-file: {}}}\n",
            key.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(support::receiver::BIN)
        .arg("-c")
        .arg(&cfg)
        .arg("-r")
        .arg(support::lab::capture("nsd-unix.fstrm"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("transforms.user-privacy.key-file")
            && err.contains("short.key")
            && err.contains("20 bytes"),
        "{err}"
    );
}
