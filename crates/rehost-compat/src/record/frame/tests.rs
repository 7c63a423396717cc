use super::*;
use crate::http::{Framing, Limits};

/// What a direction made of a message fed in `pieces`: forwarded bytes, the body kept, the
/// heads found, whether it ended, the bytes left after it. The carry works as the worker's:
/// bytes not consumed come again first.
#[derive(Debug, PartialEq)]
struct Seen {
    out: Vec<u8>,
    body: Vec<u8>,
    heads: Vec<Vec<u8>>,
    ended: bool,
    left: Vec<u8>,
}

fn run(pieces: &[&[u8]], framing: Framing, limits: &Limits) -> Result<Seen, String> {
    let mut f = Framer::new();
    let mut cap = Capture::new(limits.body);
    let mut seen = Seen {
        out: Vec::new(),
        body: Vec::new(),
        heads: Vec::new(),
        ended: false,
        left: Vec::new(),
    };
    let mut carry: Vec<u8> = Vec::new();
    for p in pieces {
        carry.extend_from_slice(p);
        let mut input = &carry[..];
        while f.phase != Phase::Done {
            let (n, found) = f
                .feed(input, &mut seen.out, &mut cap, limits)
                .map_err(|e| e.to_string())?;
            input = &input[n..];
            match found {
                Found::More if n == 0 || input.is_empty() => break,
                Found::More => {}
                Found::Head(h) => {
                    seen.out.extend_from_slice(&h);
                    seen.heads.push(h);
                    f.body(framing);
                    if f.phase == Phase::Done {
                        seen.ended = true;
                    }
                }
                Found::End => seen.ended = true,
            }
        }
        carry = input.to_vec();
    }
    seen.left = carry;
    seen.body = cap.buf;
    Ok(seen)
}

fn whole(msg: &[u8], framing: Framing) -> Seen {
    run(&[msg], framing, &Limits::default()).unwrap()
}

#[test]
fn a_chunked_body_with_extensions_and_trailers_passes_as_sent_and_is_kept_unframed() {
    let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    let s = whole(msg, Framing::Chunked);
    assert_eq!(s.out, &msg[..msg.len() - 4], "forwarded as sent");
    assert_eq!(s.body, b"abcde");
    assert!(s.ended);
    assert_eq!(s.left, b"NEXT", "what follows the message is not taken");
}

#[test]
fn bare_line_feeds_are_forwarded_as_crlf_and_empty_lines_before_a_head_skipped() {
    let msg = b"\r\n\nGET /a HTTP/1.1\nHost: x\r\nContent-Length: 2\n\nhi";
    let s = whole(msg, Framing::Length(2));
    assert_eq!(
        s.heads,
        [b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n".to_vec()]
    );
    assert_eq!(s.body, b"hi");
    assert!(s.ended);
    let chunked = b"HTTP/1.1 200 OK\r\n\r\n2\nab\n0\n\n";
    let s = whole(chunked, Framing::Chunked);
    assert_eq!(s.out, b"HTTP/1.1 200 OK\r\n\r\n2\r\nab\r\n0\r\n\r\n");
}

#[test]
fn a_body_until_close_ends_only_with_the_connection() {
    let mut f = Framer::new();
    f.body(Framing::UntilClose);
    let (mut out, mut cap) = (Vec::new(), Capture::new(1 << 20));
    let (n, found) = f
        .feed(b"all of it", &mut out, &mut cap, &Limits::default())
        .unwrap();
    assert_eq!((n, found), (9, Found::More));
    assert!(f.closed());
    assert_eq!(f.phase, Phase::Done);
    assert_eq!(cap.buf, b"all of it");
    let mut g = Framer::new();
    g.body(Framing::Length(3));
    assert!(!g.closed(), "a body with a length does not end at a close");
}

#[test]
fn a_body_over_the_recording_cap_is_forwarded_whole_and_marked_truncated() {
    let limits = Limits {
        head: 1024,
        body: 4,
    };
    let s = run(
        &[b"HTTP/1.1 200 OK\r\n\r\n0123456789"],
        Framing::Length(10),
        &limits,
    )
    .unwrap();
    assert_eq!(&s.out[s.out.len() - 10..], b"0123456789");
    assert!(s.body.is_empty() && s.ended);
}

#[test]
fn caps_hold_before_anything_is_kept() {
    let limits = Limits {
        head: 512,
        body: 1 << 20,
    };
    // A head without end, sent in pieces: refused once over the cap, not kept growing.
    let piece = [b'a'; 100];
    let pieces: Vec<&[u8]> = std::iter::repeat_n(&piece[..], 6).collect();
    let e = run(&pieces, Framing::None, &limits).unwrap_err();
    assert!(e.contains("longer than 512"), "{e}");
    // Endless empty lines before a head.
    let blanks = b"\r\n".repeat(300);
    let e = run(&[&blanks], Framing::None, &limits).unwrap_err();
    assert!(e.contains("longer than 512"), "{e}");
    // A chunk size line without end, and sizes that are not numbers or overflow.
    let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    let mut long = head.clone();
    long.extend(std::iter::repeat_n(b'1', 2000));
    let e = run(&[&long], Framing::Chunked, &limits).unwrap_err();
    assert!(e.contains("longer than 1024"), "{e}");
    for bad in [
        &b"zz\r\n"[..],
        b"fffffffffffffffff\r\n",
        b"\r\n",
        b"3\r\nabcX",
    ] {
        let mut m = head.clone();
        m.extend_from_slice(bad);
        let e = run(&[&m], Framing::Chunked, &limits).unwrap_err();
        assert!(e.contains("malformed chunked body"), "{bad:?}: {e}");
    }
    // Trailers under the head's cap.
    let mut m = head.clone();
    m.extend_from_slice(b"0\r\n");
    for _ in 0..40 {
        m.extend_from_slice(b"X-Trailer: 0123456789\r\n");
    }
    let e = run(&[&m], Framing::Chunked, &limits).unwrap_err();
    assert!(e.contains("longer than 512"), "{e}");
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_found_once_whole() {
    let mut msg = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..1500 {
        msg.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    msg.extend_from_slice(b"\r\n");
    let pieces: Vec<&[u8]> = msg.chunks(1).collect();
    let s = run(&pieces, Framing::None, &Limits::default()).unwrap();
    assert_eq!(s.heads, [msg.clone()]);
    assert!(s.ended && s.left.is_empty());
}

proptest::proptest! {
    /// However a message is cut into pieces, the same bytes are forwarded and kept.
    #[test]
    fn pieces_make_no_difference(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        chunk in 1usize..200,
        cuts in proptest::collection::vec(1usize..64, 1..40),
        bare in proptest::prelude::any::<bool>(),
    ) {
        let nl: &[u8] = if bare { b"\n" } else { b"\r\n" };
        let mut msg = Vec::new();
        for l in [&b"HTTP/1.1 200 OK"[..], b"Transfer-Encoding: chunked", b""] {
            msg.extend_from_slice(l);
            msg.extend_from_slice(nl);
        }
        for c in body.chunks(chunk) {
            msg.extend_from_slice(format!("{:x};ext=1", c.len()).as_bytes());
            msg.extend_from_slice(nl);
            msg.extend_from_slice(c);
            msg.extend_from_slice(nl);
        }
        msg.extend_from_slice(b"0");
        msg.extend_from_slice(nl);
        msg.extend_from_slice(b"Trailer-A: 1");
        msg.extend_from_slice(nl);
        msg.extend_from_slice(nl);
        msg.extend_from_slice(b"rest");
        let all = whole(&msg, Framing::Chunked);
        proptest::prop_assert_eq!(&all.body, &body);
        proptest::prop_assert!(all.ended);
        let mut pieces = Vec::new();
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= msg.len() {
                break;
            }
            let end = (at + c).min(msg.len());
            pieces.push(&msg[at..end]);
            at = end;
        }
        let cut = run(&pieces, Framing::Chunked, &Limits::default()).unwrap();
        proptest::prop_assert_eq!(cut, all);
    }

    /// Whatever a peer sends, nothing panics and nothing is kept past the caps.
    #[test]
    fn hostile_bytes_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        cut in 1usize..300,
        framing in 0u8..4,
    ) {
        let framing = match framing {
            0 => Framing::Chunked,
            1 => Framing::Length(100),
            2 => Framing::UntilClose,
            _ => Framing::None,
        };
        let limits = Limits { head: 256, body: 512 };
        let pieces: Vec<&[u8]> = bytes.chunks(cut).collect();
        if let Ok(s) = run(&pieces, framing, &limits) {
            proptest::prop_assert!(s.body.len() <= 512);
            proptest::prop_assert!(s.heads.iter().all(|h| h.len() <= 2 * 256));
        }
    }
}
