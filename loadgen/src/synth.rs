//! Synthetic dnstap: a seedable generator of realistic traffic, for load runs that need more
//! variety (or more volume) than the lab's captures. Everything on the wire is real: each
//! payload is a dnstap protobuf `Dnstap` message (dnstap.proto) whose `query_message` /
//! `response_message` are real DNS wire messages (RFC 1035 §4.1), with compression pointers,
//! EDNS OPT records (RFC 6891) and the record types resolvers see most.
//!
//! What it models, all drawn from one hand-written PRNG so that a seed gives the same corpus
//! on every machine:
//! - query names from a long-tailed (Zipf, s = 1) distribution over a generated name set:
//!   mostly short names, plus deep names, names with 63-byte labels up to the 255-byte wire
//!   limit, names with dozens of short labels, reverse-lookup names, the root, and a few
//!   names whose labels need escaping in text output;
//! - query/response pairs: the response carries the query's time and a later response time
//!   (long-tailed latency), and is emitted when its time comes, interleaved with later
//!   queries; a few queries get no response (timeouts);
//! - message types (client, resolver, auth, forwarder, stub, tool, update), IPv4/IPv6,
//!   UDP/TCP/DoT/DoH (DoH with an HTTP protocol), qtypes, rcodes, identities and versions.
//!
//! Knows nothing of Frame Streams or sockets: it fills a [`Corpus`] with payloads.
#![forbid(unsafe_code)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::corpus::Corpus;

mod dns;
mod names;
mod rng;

use names::{pick, NameSet};
use rng::{Rng, Zipf};

/// What to generate. Two specs that are equal give byte-identical corpora.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthSpec {
    pub seed: u64,
    /// dnstap messages to generate (queries and responses together).
    pub messages: usize,
    /// Distinct query names the Zipf distribution draws from.
    pub names: usize,
    /// Distinct dnstap identities (DNS servers).
    pub identities: usize,
    /// Distinct client addresses.
    pub clients: usize,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            seed: 1,
            messages: 200_000,
            names: 20_000,
            identities: 8,
            clients: 2_000,
        }
    }
}

/// Fills `corpus` with `spec.messages` synthetic dnstap payloads (appended in time order).
pub fn generate(spec: &SynthSpec, corpus: &mut Corpus) {
    let mut g = Generator::new(spec);
    let mut payload = Vec::with_capacity(2048);
    for _ in 0..spec.messages {
        payload.clear();
        g.next_payload(&mut payload);
        corpus.push(&payload);
    }
}

/// What kind of DNS server an identity is, and so which message types it logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Resolver,
    Auth,
    Forwarder,
}

struct Server {
    identity: Option<Vec<u8>>,
    version: &'static [u8],
    role: Role,
    v4: [u8; 4],
    v6: [u8; 16],
}

const VERSIONS: &[(&str, Role)] = &[
    ("unbound 1.17.1", Role::Resolver),
    ("BIND 9.18.49", Role::Auth),
    ("dnsdist 1.7.3", Role::Forwarder),
    ("knot 3.2.6", Role::Auth),
    ("PowerDNS Recursor 4.8.8", Role::Resolver),
    ("Knot Resolver 5.6.0", Role::Resolver),
    ("NSD 4.6.1", Role::Auth),
];
const SITES: &[&str] = &["fra", "ams", "par", "lon", "nyc", "sin"];

fn servers(rng: &mut Rng, n: usize) -> Vec<Server> {
    (0..n.max(1))
        .map(|i| {
            let (version, role) = VERSIONS[i % VERSIONS.len()];
            let kind = match role {
                Role::Resolver => "resolver",
                Role::Auth => "ns",
                Role::Forwarder => "dnsdist",
            };
            // Some servers send no identity at all (BIND's default).
            let identity = (i % 16 != 15)
                .then(|| format!("{kind}-{}-{}", pick(rng, SITES), i + 1).into_bytes());
            let mut v6 = [
                0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ];
            v6[15] = (i % 250) as u8 + 1;
            Server {
                identity,
                version: version.as_bytes(),
                role,
                v4: [192, 0, 2, (i % 250) as u8 + 1],
                v6,
            }
        })
        .collect()
}

struct Client {
    v4: [u8; 4],
    v6: [u8; 16],
}

fn clients(rng: &mut Rng, n: usize) -> Vec<Client> {
    (0..n.max(1))
        .map(|_| {
            let mut v4 = [10, 0, 0, 0];
            rng.fill(&mut v4[1..]);
            let mut v6 = [0u8; 16];
            rng.fill(&mut v6);
            v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            Client { v4, v6 }
        })
        .collect()
}

/// dnstap `Message.Type` numbers (dnstap.proto).
mod mtype {
    pub const AUTH_QUERY: u32 = 1;
    pub const RESOLVER_QUERY: u32 = 3;
    pub const CLIENT_QUERY: u32 = 5;
    pub const FORWARDER_QUERY: u32 = 7;
    pub const STUB_QUERY: u32 = 9;
    pub const TOOL_QUERY: u32 = 11;
    pub const UPDATE_QUERY: u32 = 13;
}

/// DNS qtype numbers (RFC 1035, 3596, 2782, 4034, 9460).
mod qtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const DNSKEY: u16 = 48;
    pub const HTTPS: u16 = 65;
    pub const ANY: u16 = 255;
}

const QTYPES: &[(u16, u32)] = &[
    (qtype::A, 450),
    (qtype::AAAA, 250),
    (qtype::HTTPS, 70),
    (qtype::PTR, 50),
    (qtype::TXT, 40),
    (qtype::MX, 30),
    (qtype::NS, 20),
    (qtype::SOA, 20),
    (qtype::SRV, 20),
    (qtype::CNAME, 10),
    (qtype::DS, 10),
    (qtype::DNSKEY, 10),
    (qtype::ANY, 5),
    (0, 5), // a type number without a mnemonic, drawn from 100..=250
];

/// rcodes (RFC 1035 §4.1.1, RFC 6895): NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, NOTIMP.
const RCODES: &[(u8, u32)] = &[(0, 800), (3, 120), (2, 40), (5, 25), (1, 8), (4, 7)];

/// One query/response exchange, as the generator decided it.
#[derive(Clone, Copy, Debug)]
struct Exchange {
    /// Nanoseconds since the Unix epoch.
    query_ns: u64,
    response_ns: u64,
    /// Query message type; the response is `+ 1`.
    mtype: u32,
    server: u32,
    client: u32,
    name: u32,
    qtype: u16,
    rcode: u8,
    id: u16,
    ipv6: bool,
    /// dnstap SocketProtocol: 1 UDP, 2 TCP, 3 DOT, 4 DOH.
    protocol: u8,
    client_port: u16,
    rd: bool,
    edns: Option<Edns>,
    /// A response that logs the query message too (as knot does).
    response_has_query: bool,
    /// An RPZ policy on the response.
    policy: bool,
    answer_seed: u64,
}

#[derive(Clone, Copy, Debug)]
struct Edns {
    udp_size: u16,
    dnssec_ok: bool,
    cookie: Option<[u8; 8]>,
    /// ECS with a /24 of the client's IPv4 network.
    ecs: bool,
}

/// A response waiting for its time, ordered so the heap pops the earliest first.
struct Pending(Exchange, u64);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap. The sequence number breaks ties so the order
        // never depends on the heap's internals.
        (other.0.response_ns, other.1).cmp(&(self.0.response_ns, self.1))
    }
}

/// 2026-01-01T00:00:00Z: a fixed start so a seed gives the same timestamps everywhere.
const EPOCH_NS: u64 = 1_767_225_600 * 1_000_000_000;

/// The generator: a clock, pending responses, and the fixed populations.
struct Generator {
    rng: Rng,
    names: NameSet,
    name_dist: Zipf,
    servers: Vec<Server>,
    server_dist: Zipf,
    clients: Vec<Client>,
    client_dist: Zipf,
    /// Time of the current query (and of the last message emitted, or later).
    clock_ns: u64,
    /// Arrival time of the next query; responses due before it are emitted first.
    next_query_ns: u64,
    pending: BinaryHeap<Pending>,
    seq: u64,
    scratch_dns: Vec<u8>,
    scratch_msg: Vec<u8>,
}

impl Generator {
    fn new(spec: &SynthSpec) -> Generator {
        let mut rng = Rng::new(spec.seed);
        let names = NameSet::generate(&mut rng, spec.names);
        let servers = servers(&mut rng, spec.identities);
        let clients = clients(&mut rng, spec.clients);
        Generator {
            name_dist: Zipf::new(names.len(), 1.0),
            server_dist: Zipf::new(servers.len(), 0.8),
            client_dist: Zipf::new(clients.len(), 1.1),
            rng,
            names,
            servers,
            clients,
            clock_ns: EPOCH_NS,
            next_query_ns: EPOCH_NS,
            pending: BinaryHeap::new(),
            seq: 0,
            scratch_dns: Vec::with_capacity(1024),
            scratch_msg: Vec::with_capacity(2048),
        }
    }

    /// Appends the next payload in time order: a due response, else a new query.
    fn next_payload(&mut self, out: &mut Vec<u8>) {
        if let Some(p) = self.pending.peek() {
            if p.0.response_ns <= self.next_query_ns {
                let Some(Pending(ex, _)) = self.pending.pop() else {
                    return;
                };
                self.encode(&ex, true, out);
                return;
            }
        }
        self.clock_ns = self.next_query_ns;
        // Next query arrival: exponential inter-arrival times, mean 20 µs (a busy server).
        self.next_query_ns += (-(1.0 - self.rng.unit()).ln() * 20_000.0) as u64;
        let ex = self.exchange();
        self.encode(&ex, false, out);
        // A few queries time out: no response is ever logged.
        if !self.rng.chance(15) {
            self.seq += 1;
            self.pending.push(Pending(ex, self.seq));
        }
    }

    fn exchange(&mut self) -> Exchange {
        let rng = &mut self.rng;
        let server = self.server_dist.sample(rng);
        let role = self.servers[server].role;
        let mtype = match role {
            Role::Auth => [mtype::AUTH_QUERY, mtype::UPDATE_QUERY][rng.weighted(&[990, 10])],
            Role::Forwarder => [mtype::CLIENT_QUERY, mtype::FORWARDER_QUERY][rng.weighted(&[1, 1])],
            Role::Resolver => [
                mtype::CLIENT_QUERY,
                mtype::RESOLVER_QUERY,
                mtype::FORWARDER_QUERY,
                mtype::STUB_QUERY,
                mtype::TOOL_QUERY,
            ][rng.weighted(&[700, 250, 30, 10, 10])],
        };
        let client_facing = mtype == mtype::CLIENT_QUERY;
        let protocol = if client_facing {
            [1, 2, 3, 4][rng.weighted(&[820, 80, 60, 40])]
        } else {
            [1, 2][rng.weighted(&[950, 50])]
        };
        let mut qtype = QTYPES[rng.weighted(&QTYPES.iter().map(|q| q.1).collect::<Vec<_>>())].0;
        if qtype == 0 {
            qtype = rng.range(100, 250) as u16;
        }
        if mtype == mtype::UPDATE_QUERY {
            qtype = qtype::SOA;
        }
        let rcode = RCODES[rng.weighted(&RCODES.iter().map(|r| r.1).collect::<Vec<_>>())].0;
        // Latency: cache hits, recursion, slow upstreams (a long tail up to 2 s).
        let latency_ns = match (role, rng.weighted(&[700, 250, 50])) {
            (Role::Auth, _) | (_, 0) => rng.range(20_000, 500_000),
            (_, 1) => rng.range(5_000_000, 80_000_000),
            _ => rng.range(100_000_000, 2_000_000_000),
        };
        let edns = rng.chance(900).then(|| {
            let mut cookie = [0u8; 8];
            let has_cookie = rng.chance(400);
            if has_cookie {
                rng.fill(&mut cookie);
            }
            Edns {
                udp_size: [1232, 4096, 1400, 512][rng.weighted(&[600, 300, 80, 20])],
                dnssec_ok: rng.chance(300),
                cookie: has_cookie.then_some(cookie),
                ecs: rng.chance(50),
            }
        });
        Exchange {
            query_ns: self.clock_ns,
            response_ns: self.clock_ns + latency_ns,
            mtype,
            server: server as u32,
            client: self.client_dist.sample(rng) as u32,
            name: self.name_dist.sample(rng) as u32,
            qtype,
            rcode,
            id: rng.below(65536) as u16,
            ipv6: rng.chance(250),
            protocol,
            client_port: rng.range(1024, 65535) as u16,
            rd: mtype != mtype::AUTH_QUERY && mtype != mtype::RESOLVER_QUERY,
            edns,
            response_has_query: role == Role::Auth && rng.chance(300),
            policy: role == Role::Resolver && rng.chance(10),
            answer_seed: rng.next_u64(),
        }
    }

    /// Encodes one dnstap message for `ex`: its query, or its response.
    fn encode(&mut self, ex: &Exchange, response: bool, out: &mut Vec<u8>) {
        let server = &self.servers[ex.server as usize];
        let client = &self.clients[ex.client as usize];
        let qname = self.names.get(ex.name as usize);
        let msg = &mut self.scratch_msg;
        msg.clear();
        let mtype = ex.mtype + u32::from(response);
        pb::varint_field(msg, 1, u64::from(mtype));
        pb::varint_field(msg, 2, if ex.ipv6 { 2 } else { 1 });
        pb::varint_field(msg, 3, u64::from(ex.protocol));
        let (qaddr, raddr): (&[u8], &[u8]) = if ex.ipv6 {
            (&client.v6, &server.v6)
        } else {
            (&client.v4, &server.v4)
        };
        pb::bytes_field(msg, 4, qaddr);
        pb::bytes_field(msg, 5, raddr);
        pb::varint_field(msg, 6, u64::from(ex.client_port));
        let server_port = match ex.protocol {
            3 => 853,
            4 => 443,
            _ => 53,
        };
        pb::varint_field(msg, 7, server_port);
        pb::varint_field(msg, 8, ex.query_ns / 1_000_000_000);
        pb::fixed32_field(msg, 9, (ex.query_ns % 1_000_000_000) as u32);
        let dns = &mut self.scratch_dns;
        if !response || ex.response_has_query {
            dns.clear();
            dns::write_query(ex, qname, dns);
            pb::bytes_field(msg, 10, dns);
        }
        if response {
            pb::varint_field(msg, 12, ex.response_ns / 1_000_000_000);
            pb::fixed32_field(msg, 13, (ex.response_ns % 1_000_000_000) as u32);
            dns.clear();
            dns::write_response(ex, qname, server.role, dns);
            pb::bytes_field(msg, 14, dns);
            if ex.policy {
                let mut policy = Vec::with_capacity(64);
                pb::bytes_field(&mut policy, 1, b"RPZ");
                pb::bytes_field(&mut policy, 2, b"\x03rpz\x07example\x00");
                pb::varint_field(&mut policy, 3, 1); // NXDOMAIN
                pb::varint_field(&mut policy, 4, 1); // QNAME
                pb::bytes_field(&mut policy, 5, qname);
                pb::bytes_field(msg, 15, &policy);
            }
        }
        if ex.protocol == 4 {
            pb::varint_field(msg, 16, if ex.answer_seed % 5 == 0 { 1 } else { 2 });
        }

        if let Some(id) = &server.identity {
            pb::bytes_field(out, 1, id);
        }
        pb::bytes_field(out, 2, server.version);
        pb::bytes_field(out, 14, msg);
        pb::varint_field(out, 15, 1); // Dnstap.Type MESSAGE
    }
}

/// Protobuf encoding (the wire format of the protobuf encoding spec): keys are
/// `field << 3 | wire type`; varints 7 bits per byte, low first; lengths as varints.
mod pb {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
        varint(out, u64::from(field << 3));
        varint(out, v);
    }

    pub fn fixed32_field(out: &mut Vec<u8>, field: u32, v: u32) {
        varint(out, u64::from(field << 3 | 5));
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes_field(out: &mut Vec<u8>, field: u32, v: &[u8]) {
        varint(out, u64::from(field << 3 | 2));
        varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnstap_receiver::dns::MessageView as DnsView;
    use dnstap_receiver::dnstap::DnstapView;

    fn corpus(spec: &SynthSpec) -> Corpus {
        let mut c = Corpus::new();
        generate(spec, &mut c);
        c
    }

    fn small() -> SynthSpec {
        SynthSpec {
            messages: 20_000,
            names: 3_000,
            ..SynthSpec::default()
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = corpus(&small());
        let b = corpus(&small());
        assert!(a.iter().eq(b.iter()));
        let c = corpus(&SynthSpec { seed: 2, ..small() });
        assert!(!a.iter().eq(c.iter()));
        assert_eq!(a.len(), 20_000);
    }

    /// Every payload is a dnstap message whose DNS messages parse, with the crate's lazy
    /// view and DNS parser (the golang CLI is the independent oracle, in tests/synth.rs).
    #[test]
    fn every_message_parses_and_responses_follow_their_queries() {
        let c = corpus(&small());
        let mut types = [0u32; 16];
        let mut last_time = (0, 0);
        let (mut v6, mut doh, mut nx) = (0, 0, 0);
        for p in c.iter() {
            let v = DnstapView::parse(p).unwrap();
            let m = v.message().unwrap().unwrap();
            let t = m.message_type.unwrap() as usize;
            types[t] += 1;
            v6 += usize::from(m.socket_family == Some(2));
            doh += usize::from(m.socket_protocol == Some(4));
            // Emitted in time order: a query at its query time, a response at its response
            // time.
            let time = if t % 2 == 0 {
                (m.response_time_sec.unwrap(), m.response_time_nsec.unwrap())
            } else {
                (m.query_time_sec.unwrap(), m.query_time_nsec.unwrap())
            };
            assert!(time >= last_time, "{time:?} after {last_time:?}");
            last_time = time;
            let dns = m.dns_message().unwrap();
            let view = DnsView::parse(dns).unwrap();
            let end = view.records_end().unwrap();
            assert_eq!(end, dns.len(), "no trailing bytes");
            if t % 2 == 0 {
                nx += usize::from(view.rcode() == 3);
                let q = (m.query_time_sec.unwrap(), m.query_time_nsec.unwrap());
                let r = (m.response_time_sec.unwrap(), m.response_time_nsec.unwrap());
                assert!(r > q, "response after its query");
            }
        }
        for t in [1, 2, 3, 4, 5, 6, 7, 8] {
            assert!(types[t] > 50, "type {t}: {types:?}");
        }
        let responses: u32 = types.iter().skip(2).step_by(2).sum();
        let queries: u32 = types.iter().skip(1).step_by(2).sum();
        // 1.5 % of queries time out; others are still pending when the corpus ends (20,000
        // messages are 0.2 s of traffic; the latency tail reaches 2 s).
        assert!(
            responses < queries && responses * 100 > queries * 85,
            "{responses} {queries}"
        );
        assert!(v6 > 4_000 && doh > 100 && nx > 800, "{v6} {doh} {nx}");
    }
}
