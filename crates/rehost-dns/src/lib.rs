//! Asks DNS servers directly, each on its own: the answer it serves now, its TTL, and the
//! zone's negative-caching TTL (from the SOA). Nothing is cached and nothing is resolved on the
//! way: a caching resolver library would hide exactly the lag a migration has to measure.
//!
//! Messages are built and read with hickory-proto's message layer (no hand-made packets); the
//! sockets are std's: UDP first, sent again once halfway through the timeout, then TCP when the
//! answer is truncated. Authoritative servers are asked without recursion desired, resolvers
//! with it (a resolver answers from its cache or asks on). A server that does not answer in
//! time, refuses, or answers with an error is [`Answer::NotAnswered`], never agreement.

pub mod update;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
pub use hickory_proto::rr::Name;
use hickory_proto::rr::{RData, RecordType};
use serde::Serialize;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The record types rehost asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, String> {
        match s.to_ascii_uppercase().as_str() {
            "A" => Ok(Kind::A),
            "AAAA" => Ok(Kind::Aaaa),
            "CNAME" => Ok(Kind::Cname),
            _ => Err(format!(
                "record type `{s}` is not one rehost asks for: use A, AAAA or CNAME"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::A => "A",
            Kind::Aaaa => "AAAA",
            Kind::Cname => "CNAME",
        }
    }

    fn record_type(self) -> RecordType {
        match self {
            Kind::A => RecordType::A,
            Kind::Aaaa => RecordType::AAAA,
            Kind::Cname => RecordType::CNAME,
        }
    }

    /// `value` as answers are written, so that the two compare: an address in its canonical
    /// form, a name in lower case with its final dot.
    pub fn normalize(self, value: &str) -> Result<String, String> {
        match self {
            Kind::A => value
                .parse::<Ipv4Addr>()
                .map(|a| a.to_string())
                .map_err(|_| format!("`{value}` is not an IPv4 address (an A record's value)")),
            Kind::Aaaa => value
                .parse::<Ipv6Addr>()
                .map(|a| a.to_string())
                .map_err(|_| format!("`{value}` is not an IPv6 address (an AAAA record's value)")),
            Kind::Cname => fqdn(value).map(|n| n.to_lowercase().to_string()),
        }
    }
}

/// Whether a server is asked as the zone's authority (no recursion) or as a resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Authoritative,
    Resolver,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Authoritative => "authoritative",
            Role::Resolver => "resolver",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    pub addr: SocketAddr,
    pub role: Role,
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address; port 53 when none is given.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "`{s}` is not a server address: give IP, IP:PORT or [IPv6]:PORT (a name would need a \
         resolver, whose answer is what is being checked)"
    ))
}

/// A name as DNS writes it, fully qualified.
pub fn fqdn(name: &str) -> Result<Name, String> {
    let mut n = Name::from_utf8(name).map_err(|e| format!("`{name}` is not a DNS name: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

/// What one server said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Answer {
    /// An answer for the name: its records of the asked type (none when the name has none or
    /// does not exist, `rcode` tells which).
    Answered {
        /// `NOERROR` or `NXDOMAIN`.
        rcode: String,
        /// The records' values, normalized (see [`Kind::normalize`]), sorted, each once.
        values: Vec<String>,
        /// The longest TTL of those records: how long a cache may keep this answer.
        ttl: Option<u32>,
        /// The zone's negative-caching TTL: the lesser of the SOA's minimum and its own TTL
        /// (RFC 2308), when the server gave the zone's SOA.
        negative_ttl: Option<u32>,
        /// The server set the AA bit (it answered as the zone's authority).
        authoritative: bool,
        /// The answer came over TCP (UDP's was truncated).
        tcp: bool,
    },
    /// No usable answer: no reply in time, refused, or an error code.
    NotAnswered { reason: String },
}

impl Answer {
    /// Whether the answer is exactly `expect` (normalized values): `None` when there is no
    /// answer to judge. A server that still serves the old address beside the new one does not
    /// serve the new one: a client may pick either.
    pub fn serves(&self, expect: &[String]) -> Option<bool> {
        match self {
            Answer::Answered { values, .. } => {
                let mut e: Vec<&String> = expect.iter().collect();
                e.sort();
                e.dedup();
                Some(values.iter().collect::<Vec<_>>() == e)
            }
            Answer::NotAnswered { .. } => None,
        }
    }

    pub fn ttl(&self) -> Option<u32> {
        match self {
            Answer::Answered { ttl, .. } => *ttl,
            Answer::NotAnswered { .. } => None,
        }
    }
}

/// One server asked, with its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Asked {
    pub server: String,
    pub role: Role,
    pub answer: Answer,
}

/// Asks every server for `name`'s `kind` records, all at once, each on its own thread; the
/// result is in the servers' order. `timeout` bounds each exchange (UDP, and TCP after it).
pub fn ask_all(servers: &[Server], name: &Name, kind: Kind, timeout: Duration) -> Vec<Asked> {
    std::thread::scope(|s| {
        let handles: Vec<_> = servers
            .iter()
            .map(|srv| s.spawn(move || ask(srv, name, kind, timeout)))
            .collect();
        handles
            .into_iter()
            .zip(servers)
            .map(|(h, srv)| Asked {
                server: srv.addr.to_string(),
                role: srv.role,
                answer: h.join().unwrap_or_else(|_| Answer::NotAnswered {
                    reason: "asking it failed inside rehost (a bug: please report it)".into(),
                }),
            })
            .collect()
    })
}

/// Asks one server for `name`'s `kind` records, then for the name's SOA (the negative TTL;
/// a name below the apex gets the zone's SOA in the authority section).
pub fn ask(server: &Server, name: &Name, kind: Kind, timeout: Duration) -> Answer {
    let recursion = server.role == Role::Resolver;
    let (msg, tcp) = match exchange(server.addr, name, kind.record_type(), recursion, timeout) {
        Ok(m) => m,
        Err(reason) => return Answer::NotAnswered { reason },
    };
    let rcode = msg.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Answer::NotAnswered {
            reason: format!("it answered {}", rcode_name(rcode)),
        };
    }
    let mut values: Vec<String> = Vec::new();
    let mut ttl: Option<u32> = None;
    for r in &msg.answers {
        let v = match (&r.data, kind) {
            (RData::A(a), Kind::A) => a.0.to_string(),
            (RData::AAAA(a), Kind::Aaaa) => a.0.to_string(),
            (RData::CNAME(c), Kind::Cname) => c.0.to_lowercase().to_string(),
            _ => continue,
        };
        ttl = Some(ttl.map_or(r.ttl, |t: u32| t.max(r.ttl)));
        values.push(v);
    }
    values.sort();
    values.dedup();
    let negative_ttl = negative_ttl(&msg).or_else(|| {
        exchange(server.addr, name, RecordType::SOA, recursion, timeout)
            .ok()
            .and_then(|(m, _)| negative_ttl(&m))
    });
    Answer::Answered {
        rcode: rcode_name(rcode),
        values,
        ttl,
        negative_ttl,
        authoritative: msg.metadata.authoritative,
        tcp,
    }
}

/// The owner of the SOA record `server` gives for `name`'s SOA (in the answer when `name` is a
/// zone's apex, else in the authority section), lower case; `None` when it gives none.
fn soa_owner(server: &Server, name: &Name, timeout: Duration) -> Result<Option<Name>, String> {
    let (msg, _) = exchange(server.addr, name, RecordType::SOA, false, timeout)?;
    Ok(msg
        .answers
        .iter()
        .chain(&msg.authorities)
        .find(|r| matches!(r.data, RData::SOA(_)))
        .map(|r| r.name.to_lowercase()))
}

/// At most this many name servers are taken from an NS answer, and this many addresses of
/// each: a hostile or broken resolver cannot make rehost ask thousands of servers.
pub const MAX_NS: usize = 16;
pub const MAX_ADDRS_PER_NS: usize = 4;

/// The zone's authoritative servers as the DNS itself names them: the zone cut above the name
/// (the nearest enclosing name with NS records), its NS names and their addresses (the glue in
/// the answer, else asked), and the primary the SOA names (MNAME).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Discovered {
    /// The server that answered the questions (a resolver, or any server that answers for the
    /// zone).
    pub via: String,
    /// The zone, fully qualified, lower case.
    pub zone: String,
    /// The SOA's MNAME: the zone's primary, which takes updates (RFC 2136 sends them there).
    pub primary: Option<String>,
    /// Each NS name with the addresses found for it (port 53); none when it has no address.
    pub servers: Vec<NameServer>,
    /// NS names beyond [`MAX_NS`] that were not asked.
    pub not_taken: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NameServer {
    pub name: String,
    pub addrs: Vec<SocketAddr>,
    /// Where the addresses came from: `glue` (the NS answer's additional section) or `asked`.
    pub source: &'static str,
}

impl Discovered {
    /// Every address of every name server, each once, in order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for s in &self.servers {
            for a in &s.addrs {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
        out
    }
}

/// Finds `name`'s zone and its authoritative servers by asking `via` in turn (the first that
/// answers is used for every question; recursion desired, as a resolver is asked). Walks up
/// from the name to the nearest name with NS records, takes its NS set and the addresses of
/// each server (glue, else A and AAAA questions), and the SOA's MNAME. An error names what
/// could not be found and from whom.
pub fn discover(name: &Name, via: &[SocketAddr], timeout: Duration) -> Result<Discovered, String> {
    if via.is_empty() {
        return Err("no server to ask for the zone's NS records".into());
    }
    let mut errors = Vec::new();
    for v in via {
        match discover_via(*v, name, timeout) {
            Ok(d) => return Ok(d),
            Err(e) => errors.push(format!("{v}: {e}")),
        }
    }
    Err(errors.join("; "))
}

fn discover_via(via: SocketAddr, name: &Name, timeout: Duration) -> Result<Discovered, String> {
    let name = name.to_lowercase();
    let mut zone = name.clone();
    let (ns_msg, zone) = loop {
        let (msg, _) = exchange(via, &zone, RecordType::NS, true, timeout)?;
        let rcode = msg.metadata.response_code;
        if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
            return Err(format!("it answered {} for {zone} NS", rcode_name(rcode)));
        }
        let has_ns = msg
            .answers
            .iter()
            .any(|r| r.name.to_lowercase() == zone && matches!(r.data, RData::NS(_)));
        if has_ns {
            break (msg, zone);
        }
        if zone.is_root() || zone.num_labels() <= 1 {
            return Err(format!(
                "no name from {name} up to its top-level domain has NS records"
            ));
        }
        zone = zone.base_name();
    };
    let mut names: Vec<Name> = Vec::new();
    for r in &ns_msg.answers {
        if let RData::NS(ns) = &r.data
            && r.name.to_lowercase() == zone
        {
            let n = ns.0.to_lowercase();
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names.sort();
    let not_taken = names.len().saturating_sub(MAX_NS);
    names.truncate(MAX_NS);
    let mut servers = Vec::new();
    for n in names {
        let glue: Vec<SocketAddr> = ns_msg
            .additionals
            .iter()
            .filter(|r| r.name.to_lowercase() == n)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(SocketAddr::new(IpAddr::V4(a.0), 53)),
                RData::AAAA(a) => Some(SocketAddr::new(IpAddr::V6(a.0), 53)),
                _ => None,
            })
            .take(MAX_ADDRS_PER_NS)
            .collect();
        let (addrs, source) = if glue.is_empty() {
            (addresses(via, &n, timeout), "asked")
        } else {
            (glue, "glue")
        };
        servers.push(NameServer {
            name: n.to_string(),
            addrs,
            source,
        });
    }
    let primary = exchange(via, &zone, RecordType::SOA, true, timeout)
        .ok()
        .and_then(|(m, _)| {
            m.answers.iter().find_map(|r| match &r.data {
                RData::SOA(soa) if r.name.to_lowercase() == zone => {
                    Some(soa.mname.to_lowercase().to_string())
                }
                _ => None,
            })
        });
    Ok(Discovered {
        via: via.to_string(),
        zone: zone.to_string(),
        primary,
        servers,
        not_taken,
    })
}

/// `host`'s IPv4 and IPv6 addresses as `via` gives them, at port 53 (at most
/// [`MAX_ADDRS_PER_NS`]); none when it gives none.
pub fn addresses(via: SocketAddr, host: &Name, timeout: Duration) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        if let Ok((m, _)) = exchange(via, host, rtype, true, timeout) {
            for r in &m.answers {
                let a = match &r.data {
                    RData::A(a) if r.name.to_lowercase() == host.to_lowercase() => IpAddr::V4(a.0),
                    RData::AAAA(a) if r.name.to_lowercase() == host.to_lowercase() => {
                        IpAddr::V6(a.0)
                    }
                    _ => continue,
                };
                let s = SocketAddr::new(a, 53);
                if !out.contains(&s) && out.len() < MAX_ADDRS_PER_NS {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The name servers `/etc/resolv.conf` lists (`nameserver IP`, at most 3 as the C library
/// takes them), at port 53; a scoped IPv6 address (`%eth0`) is skipped.
pub fn system_resolvers() -> Result<Vec<SocketAddr>, String> {
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .map_err(|e| format!("/etc/resolv.conf could not be read: {e}"))?;
    Ok(resolv_conf(&text))
}

fn resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver")).then(|| f.next()).flatten()
        })
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

fn rcode_name(r: ResponseCode) -> String {
    match r {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        other => format!("response code {}", u16::from(other)),
    }
}

/// RFC 2308: the lesser of the SOA's minimum field and the SOA record's own TTL, from the
/// answer (the name is the apex) or the authority section.
fn negative_ttl(msg: &Message) -> Option<u32> {
    msg.answers
        .iter()
        .chain(&msg.authorities)
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.minimum.min(r.ttl)),
            _ => None,
        })
}

/// One question to one server: UDP (sent again halfway through), then TCP when truncated.
fn exchange(
    addr: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<(Message, bool), String> {
    let mut q = Message::query();
    q.metadata.recursion_desired = recursion;
    q.metadata.op_code = OpCode::Query;
    q.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    q.set_edns(edns);
    let bytes = q
        .to_vec()
        .map_err(|e| format!("the question could not be encoded: {e}"))?;
    let id = q.metadata.id;
    let udp = udp_exchange(addr, &bytes, timeout, |m| fits(m, id, name, rtype))?;
    if !udp.metadata.truncation {
        return Ok((udp, false));
    }
    let tcp = tcp_exchange(addr, &bytes, timeout)?;
    if !fits(&tcp, id, name, rtype) {
        return Err("its TCP answer was not for the question asked".into());
    }
    Ok((tcp, true))
}

/// A response to our question: same id, a response, the same name and type asked.
fn fits(m: &Message, id: u16, name: &Name, rtype: RecordType) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && m.queries[0].name.to_lowercase() == name.to_lowercase()
        && m.queries[0].query_type == rtype
}

fn udp_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
    fits: impl Fn(&Message) -> bool,
) -> Result<Message, String> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).map_err(|e| format!("no UDP socket: {e}"))?;
    sock.connect(addr)
        .map_err(|e| format!("UDP to it failed: {e}"))?;
    let start = Instant::now();
    let deadline = start + timeout;
    let mut resend = Some(start + timeout / 2);
    let refused = |e: std::io::Error| {
        if e.kind() == ErrorKind::ConnectionRefused {
            format!("nothing answers on UDP port {} (refused)", addr.port())
        } else {
            format!("UDP to it failed: {e}")
        }
    };
    sock.send(bytes).map_err(refused)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("no answer within {}", secs(timeout)));
        }
        if let Some(at) = resend
            && now >= at
        {
            resend = None;
            sock.send(bytes).map_err(refused)?;
        }
        let wait = resend.unwrap_or(deadline).min(deadline) - now;
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| format!("UDP to it failed: {e}"))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                // Anything that is not the answer to this question is ignored, as a resolver
                // would: a late answer to the first send, or a forgery.
                if let Ok(m) = Message::from_vec(&buf[..n])
                    && fits(&m)
                {
                    return Ok(m);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(refused(e)),
        }
    }
}

fn tcp_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Result<Message, String> {
    let fail = |what: &str, e: std::io::Error| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            format!(
                "its UDP answer was truncated and TCP gave none within {}",
                secs(timeout)
            )
        } else {
            format!("its UDP answer was truncated and TCP failed ({what}): {e}")
        }
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail("connect", e))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| fail("set up", e))?;
    let len = u16::try_from(bytes.len()).map_err(|_| "the question is too long".to_string())?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    s.write_all(&out).map_err(|e| fail("send", e))?;
    let mut l = [0u8; 2];
    s.read_exact(&mut l).map_err(|e| fail("read", e))?;
    let mut buf = vec![0u8; u16::from_be_bytes(l) as usize];
    s.read_exact(&mut buf).map_err(|e| fail("read", e))?;
    Message::from_vec(&buf).map_err(|e| format!("its TCP answer could not be read: {e}"))
}

fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_values_parse_and_normalize() {
        assert_eq!(parse_server("127.0.0.1").unwrap().port(), 53);
        assert_eq!(parse_server("127.0.0.1:5300").unwrap().port(), 5300);
        assert_eq!(parse_server("[::1]:5300").unwrap().port(), 5300);
        assert_eq!(parse_server("::1").unwrap().port(), 53);
        assert!(parse_server("ns1.example").is_err());
        assert_eq!(
            Kind::Aaaa.normalize("2001:DB8:0::1").unwrap(),
            "2001:db8::1"
        );
        assert_eq!(
            Kind::Cname.normalize("Www.Example.").unwrap(),
            "www.example."
        );
        assert_eq!(
            Kind::Cname.normalize("www.example").unwrap(),
            "www.example."
        );
        assert!(Kind::A.normalize("::1").is_err());
        assert!(Kind::parse("mx").is_err());
    }

    #[test]
    fn resolv_conf_gives_at_most_three_name_servers_at_port_53() {
        let text = "# comment\nsearch example.org\nnameserver 10.0.0.1\nnameserver ::1\n\
                    nameserver fe80::1%eth0\nnameserver bogus\nnameserver 10.0.0.2\n\
                    nameserver 10.0.0.3\n";
        let got: Vec<String> = resolv_conf(text).iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["10.0.0.1:53", "[::1]:53", "10.0.0.2:53"]);
    }

    #[test]
    fn serving_is_the_whole_answer_and_no_answer_is_not_agreement() {
        let a = |v: &[&str]| Answer::Answered {
            rcode: "NOERROR".into(),
            values: v.iter().map(|s| s.to_string()).collect(),
            ttl: Some(60),
            negative_ttl: None,
            authoritative: true,
            tcp: false,
        };
        let new = vec!["192.0.2.2".to_string()];
        assert_eq!(a(&["192.0.2.2"]).serves(&new), Some(true));
        assert_eq!(a(&["192.0.2.1", "192.0.2.2"]).serves(&new), Some(false));
        assert_eq!(a(&[]).serves(&new), Some(false));
        let none = Answer::NotAnswered { reason: "x".into() };
        assert_eq!(none.serves(&new), None);
    }
}
