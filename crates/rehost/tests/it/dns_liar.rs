//! `rehost dns switch` against a primary that lies (a compromised or broken server, a
//! man in the middle): it answers the update with NOERROR but changes nothing, replays the
//! request's own TSIG as its signature, answers with another id, or sends garbage. rehost
//! believes none of it: only the primary's answer to a question asked after the update decides
//! that the switch was made, an answer whose MAC does not check is called unsigned, and
//! nothing a server sends makes rehost panic.
//!
//! The fake primary is a thread in the test speaking DNS over UDP (questions) and TCP (the
//! update) on one free loopback port, its messages built with hickory-proto (rehost's own
//! message layer, so the fake speaks the same wire format a real server does).

use crate::support::*;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rehost_test::TestDir;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

const SECRET: &str = "cmVob3N0LXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmc=";
const OLD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const NEW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// How the fake primary answers the update.
#[derive(Clone, Copy)]
enum Mode {
    /// NOERROR carrying the request's own TSIG record (a replay: its MAC is the request's, not
    /// one over the answer), and nothing changed.
    ReplayedSignatureNothingChanged,
    /// NOERROR without a signature, and the value does change (an honest server whose key
    /// checking is off, or a middlebox that stripped the TSIG).
    UnsignedButChanged,
    /// A response with another message id.
    OtherId,
    /// A length prefix of 65535 followed by a few bytes of garbage, then the connection closes.
    Garbage,
}

struct Fake {
    addr: SocketAddr,
    served: Arc<Mutex<Ipv4Addr>>,
    updates: Arc<Mutex<u32>>,
}

impl Fake {
    fn start(mode: Mode) -> Fake {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let served = Arc::new(Mutex::new(OLD));
        let updates = Arc::new(Mutex::new(0));
        let s = served.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Some(answer) = answer_question(&buf[..n], *s.lock().unwrap()) {
                    let _ = udp.send_to(&answer, from);
                }
            }
        });
        let (s, u) = (served.clone(), updates.clone());
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                let Ok(mut c) = conn else { continue };
                let mut len = [0u8; 2];
                if c.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut req = vec![0u8; u16::from_be_bytes(len) as usize];
                if c.read_exact(&mut req).is_err() {
                    continue;
                }
                let Ok(msg) = Message::from_vec(&req) else {
                    continue;
                };
                if msg.metadata.op_code != OpCode::Update {
                    if let Some(a) = answer_question(&req, *s.lock().unwrap()) {
                        let _ = c.write_all(&framed(&a));
                    }
                    continue;
                }
                *u.lock().unwrap() += 1;
                let answer = match mode {
                    Mode::ReplayedSignatureNothingChanged => {
                        with_record(update_answer(&msg, msg.metadata.id), tsig_of(&req))
                    }
                    Mode::UnsignedButChanged => {
                        *s.lock().unwrap() = NEW;
                        update_answer(&msg, msg.metadata.id)
                    }
                    Mode::OtherId => update_answer(&msg, msg.metadata.id.wrapping_add(1)),
                    Mode::Garbage => {
                        let _ = c.write_all(&[0xff, 0xff, 0xde, 0xad, 0xbe, 0xef]);
                        continue;
                    }
                };
                let _ = c.write_all(&framed(&answer));
            }
        });
        Fake {
            addr,
            served,
            updates,
        }
    }

    fn served(&self) -> Ipv4Addr {
        *self.served.lock().unwrap()
    }

    fn updates(&self) -> u32 {
        *self.updates.lock().unwrap()
    }
}

/// An authoritative answer to a question for `www.example.test` A (the value served), any other
/// question answered NOERROR and empty.
fn answer_question(req: &[u8], served: Ipv4Addr) -> Option<Vec<u8>> {
    let q = Message::from_vec(req).ok()?;
    let query = q.queries.first()?.clone();
    let mut r = Message::response(q.metadata.id, OpCode::Query);
    r.metadata.authoritative = true;
    r.metadata.response_code = ResponseCode::NoError;
    let www = Name::from_ascii("www.example.test.").unwrap();
    if query.query_type == RecordType::A && query.name.to_lowercase() == www {
        r.add_answer(Record::from_rdata(www, 300, RData::A(A(served))));
    }
    r.add_query(query);
    r.to_vec().ok()
}

/// NOERROR to an update: its zone section, no signature.
fn update_answer(req: &Message, id: u16) -> Vec<u8> {
    let mut r = Message::new(id, MessageType::Response, OpCode::Update);
    r.metadata.response_code = ResponseCode::NoError;
    for q in &req.queries {
        r.add_query(q.clone());
    }
    r.to_vec().unwrap()
}

/// The request's TSIG record as it was sent: the bytes from the key's name (uncompressed, as
/// a signer writes it) followed by type TSIG to the end.
fn tsig_of(req: &[u8]) -> Vec<u8> {
    let owner = b"\x0arehost-key\x00\x00\xfa".to_vec();
    let at = req
        .windows(owner.len())
        .rposition(|w| w == owner.as_slice())
        .expect("the update carries a TSIG record under the key's name");
    req[at..].to_vec()
}

/// `msg` with `record` appended as one more additional record.
fn with_record(mut msg: Vec<u8>, record: Vec<u8>) -> Vec<u8> {
    let count = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&count.to_be_bytes());
    msg.extend_from_slice(&record);
    msg
}

fn framed(m: &[u8]) -> Vec<u8> {
    let mut out = (m.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(m);
    out
}

fn switch(d: &TestDir, fake: &Fake) -> rehost_test::Output {
    let key = d.path().join("tsig.key");
    std::fs::write(
        &key,
        format!("key \"rehost-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"),
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    rehost(
        d,
        &[
            "dns",
            "switch",
            "www.example.test",
            "--from",
            &OLD.to_string(),
            "--to",
            &NEW.to_string(),
            "--server",
            &fake.addr.to_string(),
            "--zone",
            "example.test",
            "--key-file",
            key.to_str().unwrap(),
            "--timeout",
            "3",
        ],
    )
}

fn no_panic(o: &rehost_test::Output) {
    assert!(!o.all().contains("panicked"), "{}", o.all());
    assert!(!o.all().contains(SECRET), "{}", o.all());
}

#[test]
fn a_primary_that_says_noerror_with_a_replayed_signature_but_changes_nothing_is_not_believed() {
    let d = TestDir::new();
    let fake = Fake::start(Mode::ReplayedSignatureNothingChanged);
    let o = switch(&d, &fake);
    no_panic(&o);
    assert_eq!(fake.updates(), 1, "the update was sent once: {}", o.all());
    assert_eq!(o.code, 2, "{}", o.all());
    // The replayed MAC is not the answer's: called unsigned; the question after decides.
    assert!(
        o.stderr
            .contains("answered the update with NOERROR (unsigned) but serves 192.0.2.1"),
        "{}",
        o.all()
    );
    assert!(!o.stdout.contains("switched"), "{}", o.all());
    assert_eq!(fake.served(), OLD);
}

#[test]
fn an_unsigned_noerror_is_accepted_only_because_the_question_after_shows_the_new_value() {
    let d = TestDir::new();
    let fake = Fake::start(Mode::UnsignedButChanged);
    let o = switch(&d, &fake);
    no_panic(&o);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(fake.served(), NEW);
    // Said as it is: the answer was not signed, and what decided was the question asked after.
    assert!(
        o.stdout
            .contains("without a valid signature (not trusted: its answer to a question decided)"),
        "{}",
        o.all()
    );
    assert!(!o.stdout.contains("with a valid signature"), "{}", o.all());
}

#[test]
fn an_answer_with_another_id_or_garbage_is_an_error_that_says_the_update_may_have_been_applied() {
    for mode in [Mode::OtherId, Mode::Garbage] {
        let d = TestDir::new();
        let fake = Fake::start(mode);
        let o = switch(&d, &fake);
        no_panic(&o);
        assert_eq!(fake.updates(), 1, "{}", o.all());
        assert_eq!(o.code, 2, "{}", o.all());
        assert!(
            o.stderr.contains("may or may not have been applied"),
            "{}",
            o.all()
        );
        assert!(o.stderr.contains(&fake.addr.to_string()), "{}", o.all());
    }
}

/// A resolver that floods the NS question (40 name servers, 10 glue addresses each, one name
/// server's address a name that is not the server's): rehost takes at most 16 name servers
/// and 4 addresses of each, says how many it left, ignores glue for names not asked, and
/// neither panics nor asks more.
#[test]
fn a_flood_of_ns_records_is_bounded() {
    use hickory_proto::rr::rdata::NS;
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(query) = q.queries.first().cloned() else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.metadata.response_code = ResponseCode::NoError;
            let zone = Name::from_ascii("example.test.").unwrap();
            if query.query_type == RecordType::NS && query.name.to_lowercase() == zone {
                for i in 0..40u8 {
                    let ns = Name::from_ascii(format!("ns{i}.example.test.")).unwrap();
                    r.add_answer(Record::from_rdata(
                        zone.clone(),
                        60,
                        RData::NS(NS(ns.clone())),
                    ));
                    for j in 0..10u8 {
                        r.add_additional(Record::from_rdata(
                            ns.clone(),
                            60,
                            RData::A(A(Ipv4Addr::new(127, 254, i, j + 1))),
                        ));
                    }
                }
                // Glue for a name that is no name server of the zone: not taken.
                r.add_additional(Record::from_rdata(
                    Name::from_ascii("evil.example.").unwrap(),
                    60,
                    RData::A(A(Ipv4Addr::new(127, 254, 254, 254))),
                ));
            }
            r.add_query(query);
            if let Ok(bytes) = r.to_vec() {
                let _ = udp.send_to(&bytes, from);
            }
        }
    });
    let d = TestDir::new();
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--resolver",
            &addr.to_string(),
            "--timeout",
            "0.3",
            "--json",
        ],
    );
    assert_eq!(
        o.code,
        2,
        "nothing answers at the glue addresses: {}",
        o.all()
    );
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    let found = &v["discovered"];
    assert_eq!(found["servers"].as_array().unwrap().len(), 16, "{found}");
    assert_eq!(found["not_taken"], 24);
    for s in found["servers"].as_array().unwrap() {
        assert_eq!(s["addrs"].as_array().unwrap().len(), 4, "{s}");
    }
    // 16 × 4 authoritative addresses and the resolver: nothing more was asked.
    let asked = v["servers"].as_array().unwrap();
    assert_eq!(asked.len(), 65);
    assert!(!o.stdout.contains("127.254.254.254"), "{}", o.stdout);
}
