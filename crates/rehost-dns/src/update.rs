//! Changing a name at its primary server: a DNS UPDATE (RFC 2136) that replaces exactly the
//! plan's old value with its new one, signed with a TSIG key (RFC 8945), and the server's
//! answer checked, its signature included.
//!
//! The update carries a prerequisite, "the record set is exactly the old value" (RFC 2136
//! 2.4.2): a server whose record someone else changed since the plan was written refuses it
//! (`NXRRSET`) and nothing is overwritten. Before sending, the server is asked what it serves:
//! already the new value is success without a change (so a step runs again safely); anything
//! else than the old or the new value is refused here, naming what it serves. After a
//! `NOERROR`, the server is asked again, and only its answer (exactly the new value) counts as
//! switched: a forged `NOERROR` cannot make a switch that did not happen look done.
//!
//! TSIG's MAC is HMAC-SHA256 or HMAC-SHA512, computed here over `sha2` (no DNSSEC stack, no
//! async runtime); the key's secret never leaves [`TsigKey`], which does not print it.
//!
//! Messages here hold text from the server and the key file as it is: every output escapes it
//! (the terminal through `rehost_plan::escape_control`, the report by its renderers).

use crate::{Answer, Kind, Role, Server, ask, fqdn, secs};
use base64::Engine as _;
use hickory_proto::op::{
    Header, Message, MessageType, OpCode, Query, ResponseCode, update_message,
};
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, make_tsig_record, message_tbs};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use serde::Serialize;
use sha2::Digest;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

/// How far the server's clock may be from ours (RFC 8945 recommends 300 s).
const FUDGE: u16 = 300;

/// The MAC algorithms rehost signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Algorithm {
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

impl Algorithm {
    fn parse(s: &str) -> Result<Algorithm, String> {
        match s.trim().trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(Algorithm::HmacSha256),
            "hmac-sha512" => Ok(Algorithm::HmacSha512),
            other => Err(format!(
                "TSIG algorithm `{}` is not one rehost signs with: use hmac-sha256 or hmac-sha512",
                other
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    fn tsig(self) -> TsigAlgorithm {
        match self {
            Algorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
            Algorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }

    /// HMAC (RFC 2104) over the concatenation of `parts`.
    fn mac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Algorithm::HmacSha256 => hmac::<sha2::Sha256, 64>(key, parts),
            Algorithm::HmacSha512 => hmac::<sha2::Sha512, 128>(key, parts),
        }
    }
}

fn hmac<D: Digest, const BLOCK: usize>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        let h = D::digest(key);
        k[..h.len()].copy_from_slice(&h);
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = D::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = D::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(&inner);
    k.fill(0);
    outer.finalize().to_vec()
}

/// A TSIG key: its name and algorithm, which may be shown, and its secret, which is never
/// formatted (`Debug` shows the name only) and is overwritten when dropped.
pub struct TsigKey {
    pub name: Name,
    pub algorithm: Algorithm,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TsigKey({} {}, secret not shown)",
            self.name,
            self.algorithm.name()
        )
    }
}

impl Drop for TsigKey {
    fn drop(&mut self) {
        self.secret.fill(0);
    }
}

impl TsigKey {
    /// Reads a key in any of the forms the servers' own tools write: BIND's `tsig-keygen`
    /// (`key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`), Knot's `keymgr -t`
    /// (`key: - id: NAME algorithm: … secret: …`) or the one line `ALGORITHM:NAME:BASE64` of
    /// `nsupdate -y`/`knsupdate -y`. An error never quotes the secret.
    pub fn parse(text: &str) -> Result<TsigKey, String> {
        let (algorithm, name, secret) = if let Some(rest) = text.trim_start().strip_prefix("key")
            && rest.trim_start().starts_with('"')
        {
            bind_form(rest)?
        } else if text.contains("secret:") {
            knot_form(text)?
        } else {
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .ok_or("the key file is empty")?;
            let mut it = line.splitn(3, ':');
            match (it.next(), it.next(), it.next()) {
                (Some(a), Some(n), Some(s)) => (a.to_string(), n.to_string(), s.to_string()),
                _ => {
                    return Err(
                        "not a TSIG key: expected BIND's `key \"NAME\" { algorithm …; \
                                secret \"…\"; };`, Knot's `key:` block or `ALGORITHM:NAME:SECRET`"
                            .into(),
                    );
                }
            }
        };
        let algorithm = Algorithm::parse(&algorithm)?;
        let name = fqdn(name.trim())
            .map_err(|_| format!("the TSIG key's name `{}` is not a DNS name", &name))?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim().as_bytes())
            .map_err(|_| format!("the secret of TSIG key {name} is not base64"))?;
        if secret.is_empty() {
            return Err(format!("the secret of TSIG key {name} is empty"));
        }
        Ok(TsigKey {
            name,
            algorithm,
            secret,
        })
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        self.algorithm.mac(&self.secret, parts)
    }
}

/// Reads a TSIG key file: refused when every user may read it (the secret would not be one);
/// errors name the file, never its content.
pub fn read_key_file(path: &std::path::Path) -> Result<TsigKey, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| format!("TSIG key file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("TSIG key file {shown} is not a regular file"));
    }
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!(
            "TSIG key file {shown} is readable by every user, so its secret is not one: \
             `chmod o-r {shown}` (and consider a new key)"
        ));
    }
    if meta.len() > 64 * 1024 {
        return Err(format!(
            "TSIG key file {shown} is over 64 KiB: not a key file"
        ));
    }
    let text = std::fs::read(path).map_err(|e| format!("TSIG key file {shown}: {e}"))?;
    let text = String::from_utf8(text).map_err(|_| format!("TSIG key file {shown} is not text"))?;
    TsigKey::parse(&text).map_err(|e| format!("TSIG key file {shown}: {e}"))
}

/// `"NAME" { algorithm ALG; secret "B64"; };` after the word `key`.
fn bind_form(rest: &str) -> Result<(String, String, String), String> {
    let bad = || {
        "a BIND key block that does not read as `key \"NAME\" { algorithm ALG; secret \"…\"; };`"
            .to_string()
    };
    let rest = rest.trim_start().strip_prefix('"').ok_or_else(bad)?;
    let (name, rest) = rest.split_once('"').ok_or_else(bad)?;
    let body = rest.trim_start().strip_prefix('{').ok_or_else(bad)?;
    let (mut alg, mut secret) = (None, None);
    for stmt in body.split(';') {
        let stmt = stmt.trim().trim_start_matches('}').trim();
        if let Some(a) = stmt.strip_prefix("algorithm") {
            alg = Some(a.trim().to_string());
        } else if let Some(s) = stmt.strip_prefix("secret") {
            secret = Some(s.trim().trim_matches('"').to_string());
        }
    }
    Ok((
        alg.ok_or_else(bad)?,
        name.to_string(),
        secret.ok_or_else(bad)?,
    ))
}

/// Knot's `keymgr -t NAME` block: `id:`, `algorithm:`, `secret:` lines (the first key).
fn knot_form(text: &str) -> Result<(String, String, String), String> {
    let (mut id, mut alg, mut secret) = (None, None, None);
    for line in text.lines() {
        let l = line.trim().trim_start_matches("- ").trim();
        let field = |p: &str| {
            l.strip_prefix(p)
                .map(|v| v.trim().trim_matches('"').to_string())
        };
        if id.is_none() {
            id = field("id:");
        }
        if alg.is_none() {
            alg = field("algorithm:");
        }
        if secret.is_none() {
            secret = field("secret:");
        }
    }
    match (alg, id, secret) {
        (Some(a), Some(i), Some(s)) => Ok((a, i, s)),
        _ => Err("a Knot key block without all of `id:`, `algorithm:` and `secret:`".into()),
    }
}

/// One name to switch: its record set replaced from exactly `old` to exactly `new`.
#[derive(Clone, Debug)]
pub struct Change {
    pub name: Name,
    pub kind: Kind,
    /// Normalised values ([`Kind::normalize`]).
    pub old: Vec<String>,
    pub new: Vec<String>,
    /// The TTL the new records get.
    pub ttl: u32,
}

/// What the primary did with one change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Switched {
    /// It served the old value, took the update, and serves exactly the new value now.
    Switched {
        /// Whether its answer to the update carried a valid TSIG signature of our key.
        answer_signed: bool,
    },
    /// It served the new value already: nothing was sent.
    AlreadyNew,
}

/// Replaces `change` at `server` (the zone's primary) in `zone`, signed with `key`. Errors name
/// what the server said or did and what to do; an error after the update was sent says so.
pub fn switch(
    server: SocketAddr,
    zone: &Name,
    change: &Change,
    key: &TsigKey,
    timeout: Duration,
) -> Result<Switched, String> {
    if !zone.zone_of(&change.name) {
        return Err(format!("{} is not in zone {zone}", change.name));
    }
    let primary = Server {
        addr: server,
        role: Role::Authoritative,
    };
    let serving = |when: &str| -> Result<Vec<String>, String> {
        match ask(&primary, &change.name, change.kind, timeout) {
            Answer::Answered { values, .. } => Ok(values),
            Answer::NotAnswered { reason } => Err(format!(
                "the primary {server} did not say what it serves {when}: {reason}"
            )),
        }
    };
    let before = serving("before the update")?;
    if same(&before, &change.new) {
        return Ok(Switched::AlreadyNew);
    }
    if !same(&before, &change.old) {
        return Err(format!(
            "the primary {server} serves {} for {} {}, which is neither the plan's old value ({}) \
             nor its new one ({}): someone changed it since the plan was written; nothing was \
             sent. Check the zone, then correct the plan's `old`",
            list(&before),
            change.name,
            change.kind.name(),
            list(&change.old),
            list(&change.new)
        ));
    }
    let mut msg = update_message::compare_and_swap(
        rrset(change, &change.old, 0)?,
        rrset(change, &change.new, change.ttl)?,
        zone.clone(),
        false,
    );
    let request_mac = sign(&mut msg, key)?;
    let bytes = msg
        .to_vec()
        .map_err(|e| format!("the update could not be encoded: {e}"))?;
    let answer = tcp_send(server, &bytes, timeout)
        .map_err(|e| format!("the update to {server} got no answer ({e}); it may or may not have been applied: ask the server before running again"))?;
    let reply = Message::from_vec(&answer)
        .map_err(|e| format!("the answer of {server} to the update could not be read: {e}"))?;
    if reply.metadata.id != msg.metadata.id
        || reply.metadata.message_type != MessageType::Response
        || reply.metadata.op_code != OpCode::Update
    {
        return Err(format!(
            "{server} answered something else than the update sent; it may or may not have been \
             applied: ask the server"
        ));
    }
    let answer_signed = verify_answer(&answer, &request_mac, key).is_ok();
    let rcode = reply.metadata.response_code;
    if rcode != ResponseCode::NoError {
        return Err(format!(
            "the primary {server} refused the update: {}{}",
            refusal(rcode),
            if answer_signed {
                ""
            } else {
                " (its answer was not signed with the key)"
            }
        ));
    }
    let after = serving("after the update")?;
    if !same(&after, &change.new) {
        return Err(format!(
            "the primary {server} answered the update with NOERROR{} but serves {} for {} {}, \
             not the new value ({})",
            if answer_signed { "" } else { " (unsigned)" },
            list(&after),
            change.name,
            change.kind.name(),
            list(&change.new)
        ));
    }
    Ok(Switched::Switched { answer_signed })
}

fn same(a: &[String], b: &[String]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a.dedup();
    b.dedup();
    a == b
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

fn refusal(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NXRRSet => "NXRRSET: the record set is not the old value any more (someone changed it); nothing was overwritten".into(),
        ResponseCode::NotAuth => "NOTAUTH: the key is not accepted for this zone, or the server is not its primary (check the key's name, secret and the zone's update ACL)".into(),
        ResponseCode::Refused => "REFUSED: the server does not allow updates to this zone from here (check its update ACL)".into(),
        ResponseCode::NotZone => "NOTZONE: the name is not in the zone".into(),
        other => format!("{other}"),
    }
}

fn rrset(change: &Change, values: &[String], ttl: u32) -> Result<RecordSet, String> {
    let mut set = RecordSet::with_ttl(change.name.clone(), rtype(change.kind), ttl);
    set.set_dns_class(DNSClass::IN);
    for v in values {
        let rdata = match change.kind {
            Kind::A => RData::A(A(v
                .parse()
                .map_err(|_| format!("`{v}` is not an IPv4 address"))?)),
            Kind::Aaaa => RData::AAAA(AAAA(
                v.parse()
                    .map_err(|_| format!("`{v}` is not an IPv6 address"))?,
            )),
            Kind::Cname => RData::CNAME(CNAME(fqdn(v)?)),
        };
        set.add_rdata(rdata);
    }
    Ok(set)
}

fn rtype(kind: Kind) -> RecordType {
    match kind {
        Kind::A => RecordType::A,
        Kind::Aaaa => RecordType::AAAA,
        Kind::Cname => RecordType::CNAME,
    }
}

/// Signs `msg` with a TSIG record (the last additional record); returns the request's MAC,
/// which the answer's MAC covers.
fn sign(msg: &mut Message, key: &TsigKey) -> Result<Vec<u8>, String> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| "this machine's clock is before 1970")?
        .as_secs();
    let pre = TSIG::new(
        key.algorithm.tsig(),
        now,
        FUDGE,
        Vec::new(),
        msg.metadata.id,
        None,
        Vec::new(),
    );
    let tbs = message_tbs(msg, &pre, &key.name)
        .map_err(|e| format!("the update could not be signed: {e}"))?;
    let mac = key.mac(&[&tbs]);
    let record = make_tsig_record(key.name.clone(), pre.set_mac(mac.clone()));
    msg.add_additional(record.into_record_of_rdata());
    Ok(mac)
}

/// Checks the TSIG of an answer (RFC 8945 5.3, 4.3.1): its MAC covers the request's MAC, the
/// answer as sent without its TSIG record (the additional count one less, the original id),
/// and the TSIG variables.
fn verify_answer(answer: &[u8], request_mac: &[u8], key: &TsigKey) -> Result<(), String> {
    let mut d = BinDecoder::new(answer);
    let Header {
        mut metadata,
        mut counts,
    } = Header::read(&mut d).map_err(|e| e.to_string())?;
    if counts.additionals == 0 {
        return Err("not signed".into());
    }
    let body_start = answer.len() - d.len();
    for _ in 0..counts.queries {
        Query::read(&mut d).map_err(|e| e.to_string())?;
    }
    let before_sig =
        counts.answers as usize + counts.authorities as usize + counts.additionals as usize - 1;
    for _ in 0..before_sig {
        Record::<RData>::read(&mut d).map_err(|e| e.to_string())?;
    }
    let sig_start = answer.len() - d.len();
    let rec = Record::<RData>::read(&mut d).map_err(|e| e.to_string())?;
    let RData::TSIG(tsig) = &rec.data else {
        return Err("its last record is not a TSIG".into());
    };
    if rec.name.to_lowercase() != key.name.to_lowercase() || tsig.algorithm != key.algorithm.tsig()
    {
        return Err("signed with another key".into());
    }
    counts.additionals -= 1;
    metadata.id = tsig.oid;
    let mut head = Vec::with_capacity(12);
    Header { metadata, counts }
        .emit(&mut BinEncoder::new(&mut head))
        .map_err(|e| e.to_string())?;
    let mut vars = Vec::new();
    tsig.emit_tsig_for_mac(&mut BinEncoder::new(&mut vars), &rec.name)
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(request_mac.len())
        .map_err(|_| "MAC too long")?
        .to_be_bytes();
    let want = key.mac(&[
        &len,
        request_mac,
        &head,
        &answer[body_start..sig_start],
        &vars,
    ]);
    // Compared in full whatever differs first: the time taken says nothing about the MAC.
    let differ = want.len() != tsig.mac.len()
        || want
            .iter()
            .zip(&tsig.mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0;
    if differ {
        return Err("its MAC does not match".into());
    }
    Ok(())
}

fn tcp_send(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "the update is too long".to_string())?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    s.write_all(&out).map_err(|e| format!("send: {e}"))?;
    let mut l = [0u8; 2];
    s.read_exact(&mut l)
        .map_err(|e| format!("no answer within {}: {e}", secs(timeout)))?;
    let mut buf = vec![0u8; u16::from_be_bytes(l) as usize];
    s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
    Ok(buf)
}

/// The zone `name` is in, as `server` says: the owner of the SOA in its answer or authority
/// section for `name`'s SOA.
pub fn zone_of(server: SocketAddr, name: &Name, timeout: Duration) -> Result<Name, String> {
    let mut n = name.clone();
    loop {
        let primary = Server {
            addr: server,
            role: Role::Authoritative,
        };
        if crate::soa_owner(&primary, &n, timeout)?.is_some_and(|owner| owner == n.to_lowercase()) {
            return Ok(n);
        }
        if n.is_root() {
            return Err(format!("{server} serves no zone that holds {name}"));
        }
        n = n.base_name();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (a short key) for both algorithms.
    #[test]
    fn hmac_matches_rfc_4231() {
        let data: &[u8] = b"what do ya want for nothing?";
        assert_eq!(
            hex(&Algorithm::HmacSha256.mac(b"Jefe", &[&data[..10], &data[10..]])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&Algorithm::HmacSha512.mac(b"Jefe", &[data])),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        // A key longer than the block is hashed first (test case 6).
        let long = [0xaau8; 131];
        assert_eq!(
            hex(&Algorithm::HmacSha256.mac(
                &long,
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn key_files_in_each_servers_form_parse_and_never_show_the_secret() {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=";
        let forms = [
            format!(
                "key \"rehost-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n"
            ),
            format!(
                "# hmac-sha256:rehost-key:{secret}\nkey:\n  - id: rehost-key\n    algorithm: hmac-sha256\n    secret: {secret}\n"
            ),
            format!("hmac-sha256:rehost-key:{secret}\n"),
        ];
        for f in &forms {
            let k = TsigKey::parse(f).unwrap();
            assert_eq!(k.name.to_string(), "rehost-key.");
            assert_eq!(k.algorithm, Algorithm::HmacSha256);
            assert_eq!(k.secret, b"secret-secret-secret-secret-secr");
            assert!(!format!("{k:?}").contains(secret));
        }
        for bad in [
            "".to_string(),
            "hmac-md5:k:c2VjcmV0".to_string(),
            format!("hmac-sha256:k:{secret}!!"),
            "key \"k\" { algorithm hmac-sha256; };".to_string(),
        ] {
            let e = TsigKey::parse(&bad).unwrap_err();
            assert!(!e.contains(secret) && !e.contains("c2VjcmV0"), "{e}");
        }
    }

    #[test]
    fn a_signed_update_carries_a_mac_over_the_message_and_the_variables() {
        let key = TsigKey::parse("hmac-sha256:k:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();
        let change = Change {
            name: fqdn("www.example.test").unwrap(),
            kind: Kind::A,
            old: vec!["192.0.2.1".into()],
            new: vec!["192.0.2.2".into()],
            ttl: 60,
        };
        let mut msg = update_message::compare_and_swap(
            rrset(&change, &change.old, 0).unwrap(),
            rrset(&change, &change.new, 60).unwrap(),
            fqdn("example.test").unwrap(),
            false,
        );
        let unsigned = msg.clone();
        let mac = sign(&mut msg, &key).unwrap();
        assert_eq!(mac.len(), 32);
        let bytes = msg.to_vec().unwrap();
        let back = Message::from_vec(&bytes).unwrap();
        let RData::TSIG(t) = &back.additionals.last().unwrap().data else {
            panic!("no TSIG last")
        };
        assert_eq!(t.mac, mac);
        // The MAC is over the message without its TSIG and the variables.
        let tbs = message_tbs(
            &unsigned,
            &TSIG::new(
                TsigAlgorithm::HmacSha256,
                t.time,
                FUDGE,
                vec![],
                t.oid,
                None,
                vec![],
            ),
            &key.name,
        )
        .unwrap();
        assert_eq!(key.mac(&[&tbs]), mac);
    }
}
