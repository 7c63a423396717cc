//! A compromised old server's agent (security issue #8, items 1 and 7): a fake host that
//! answers like an agent would, with crafted manifests, endless streams and oversized file
//! pieces. rehost refuses each, with an error naming the host, writes nothing and does not
//! panic or grow without bound. [`FramedAgent`] does it through real frames: content larger
//! than the limit, more bytes than a frame claims, a frame cut off, content not asked for.

use rehost_host::agent::{
    AgentConn, AgentFrame, MAX_DATA, PROTOCOL_VERSION, Request, Response, write_frame,
};
use rehost_host::transfer::{TransferOptions, transfer_between};
use rehost_host::{Blob, Host, HostError, LocalHost};
use rehost_tree::{Entry, Kind, Manifest};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// How the fake agent misbehaves.
#[derive(Clone, Copy)]
enum Evil {
    /// Its manifest has `a`, a symlink out of the tree, and `a/x`, a setuid file under it.
    EntryUnderSymlink,
    /// A hard-link index out of range (panicked `rehost run` mid-sync).
    LinkOutOfRange,
    /// Manifest data without end, until cancelled.
    EndlessManifest,
    /// A valid manifest, then more file pieces than asked for, each longer than asked.
    OversizedPieces,
    /// More answers to a pre-flight probe than paths asked about.
    ExtraProbes,
    /// A connection listing with more connections than asked for, then one to a port not
    /// asked for (`connection_ports`), then two listings.
    ExtraConnections,
    /// A key scan answered out of order: keys after its summary (one path asked), no summary
    /// (two paths), an answer of another request (three).
    LyingKeyScan,
    /// A reference scan answered with a line naming a needle that was not asked for (one path
    /// asked), a line of 10 KB of text (two paths), a second summary (three).
    LyingRefScan,
    /// A survey answered with garbage, without end, with a string over the limit, with a
    /// length that is not what it sent, with another request's answer, without its end, with
    /// an endless progress text (chosen by the seconds of sampling asked for, 1 to 7).
    LyingSurvey,
}

struct FakeAgent {
    evil: Evil,
    outside: PathBuf,
}

impl FakeAgent {
    fn manifest(&self) -> Manifest {
        let mut root = Entry::new(Box::default(), Kind::Dir);
        root.mode = 0o755;
        let file = |p: &str| {
            let mut e = Entry::new(p.as_bytes().into(), Kind::File);
            e.mode = 0o4755;
            e.size = 4;
            e.digest = Some(*blake3::hash(b"evil").as_bytes());
            e
        };
        let entries = match self.evil {
            Evil::EntryUnderSymlink => {
                let mut link = Entry::new(b"a".as_slice().into(), Kind::Symlink);
                link.target = Some(self.outside.as_os_str().as_encoded_bytes().into());
                vec![root, link, file("a/x")]
            }
            Evil::LinkOutOfRange => {
                let mut f = file("f");
                f.link = 4242;
                vec![root, file("e"), f]
            }
            _ => vec![root, file("f")],
        };
        Manifest {
            entries,
            ..Manifest::default()
        }
    }
}

impl Host for FakeAgent {
    fn name(&self) -> &str {
        "old"
    }

    fn resolve(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }

    fn remote_end(&self, _path: &str, _here: bool) -> Option<rehost_host::RemoteEnd> {
        None
    }

    fn request(
        &self,
        req: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        match (req, self.evil) {
            (Request::Manifest { .. }, Evil::EndlessManifest) => {
                while !cancel.load(Relaxed) {
                    on_response(Response::ManifestData {
                        data: Blob::from(vec![0u8; 1 << 20]),
                    });
                }
            }
            (Request::Manifest { .. }, _) => on_response(Response::ManifestData {
                data: Blob::from(self.manifest().to_binary()),
            }),
            (Request::Probe { .. }, Evil::ExtraProbes) => {
                for _ in 0..3 {
                    on_response(Response::Probed {
                        probe: Default::default(),
                    });
                }
            }
            (Request::Connections { ports, limit, .. }, Evil::ExtraConnections) => {
                let conn = |port: u16| rehost_host::conns::Connection {
                    local_addr: [127, 0, 0, 1].into(),
                    local_port: port,
                    peer_addr: [10, 0, 0, 1].into(),
                    peer_port: 40000,
                    send_queue: 0,
                    recv_queue: 0,
                    uid: 0,
                    inode: 1,
                    pid: None,
                    command: Some("\x1b]0;evil\x07".into()),
                };
                let listing = |connections| rehost_host::conns::Listing {
                    connections,
                    source: rehost_host::conns::Source::Netlink,
                    fallback: None,
                    truncated: false,
                    processes_not_read: false,
                };
                let answer = match *limit {
                    // More than asked for.
                    1 => vec![listing(vec![conn(ports[0]), conn(ports[0])])],
                    // A port not asked for.
                    2 => vec![listing(vec![conn(ports[0] + 1)])],
                    // Two listings.
                    _ => vec![listing(vec![conn(ports[0])]), listing(vec![])],
                };
                for l in answer {
                    on_response(Response::Connections { listing: l });
                }
            }
            (Request::ScanKeys { paths, .. }, Evil::LyingKeyScan) => match paths.len() {
                1 => {
                    on_response(Response::KeysScanned {
                        files: 1,
                        read: 1,
                        errors: Vec::new(),
                        cached: 0,
                        notes: Vec::new(),
                    });
                    on_response(Response::KeysFound { found: Vec::new() });
                }
                2 => on_response(Response::KeysFound { found: Vec::new() }),
                // More files skipped by its cache than it examined, and notes without end.
                4 => on_response(Response::KeysScanned {
                    files: 3,
                    read: 0,
                    errors: Vec::new(),
                    cached: u64::MAX,
                    notes: vec!["\x1b]0;evil\x07".into(); 10_000],
                }),
                _ => on_response(Response::Connected { error: None }),
            },
            (Request::ScanRefs { paths, .. }, Evil::LyingRefScan) => {
                let line = |needles: Vec<u32>, text: String| rehost_host::RefFound {
                    path: "/etc/hosts".into(),
                    line: 1,
                    needles,
                    text,
                };
                match paths.len() {
                    1 => on_response(Response::RefsFound {
                        found: vec![line(vec![7], "10.0.0.1".into())],
                    }),
                    2 => on_response(Response::RefsFound {
                        found: vec![line(vec![0], "x".repeat(10_000))],
                    }),
                    _ => {
                        on_response(Response::RefsScanned {
                            summary: Default::default(),
                        });
                        on_response(Response::RefsScanned {
                            summary: Default::default(),
                        });
                    }
                }
            }
            (Request::Survey { options }, Evil::LyingSurvey) => {
                let data = |d: Vec<u8>| Response::SurveyData {
                    data: Blob::from(d),
                };
                let valid = |hostname: &str| {
                    let mut inv = rehost_survey::Inventory::new("old", "2026-12-07T12:00:00Z");
                    inv.system.hostname = hostname.into();
                    serde_json::to_vec(&inv).unwrap()
                };
                match options.sample_seconds {
                    1 => {
                        let d = b"{\"format\":1,\"host\":[".to_vec();
                        let n = d.len() as u64;
                        on_response(data(d));
                        on_response(Response::Surveyed { bytes: n });
                    }
                    2 => {
                        while !cancel.load(Relaxed) {
                            on_response(data(vec![b' '; 1 << 20]));
                        }
                    }
                    3 => {
                        let d = valid(&"\u{1b}]0;evil\u{7}".repeat(1000));
                        let n = d.len() as u64;
                        on_response(data(d));
                        on_response(Response::Surveyed { bytes: n });
                    }
                    4 => {
                        on_response(data(valid("vm")));
                        on_response(Response::Surveyed { bytes: 1 });
                    }
                    5 => on_response(Response::Connected { error: None }),
                    6 => on_response(data(valid("vm"))),
                    _ => on_response(Response::SurveyProgress {
                        progress: rehost_host::survey::SurveyProgress {
                            stage: "x".repeat(100_000),
                            done: 0,
                            total: 0,
                        },
                    }),
                }
            }
            (Request::ReadFiles { .. }, _) => {
                for _ in 0..3 {
                    on_response(Response::FileData {
                        data: Blob::from(b"evil and then some".to_vec()),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Transfers from the fake agent into a fresh tree; returns the error, with the canary
/// directory outside checked unchanged.
fn transfer_from(evil: Evil) -> HostError {
    let outer = tempfile::tempdir().unwrap();
    let outside = outer.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), "keep").unwrap();
    let dst = outer.path().join("new");
    let old = FakeAgent {
        evil,
        outside: outside.clone(),
    };
    let new = LocalHost::new("new", None);
    let r = transfer_between(
        (&old, b"/srv".as_slice()),
        (&new, dst.as_os_str().as_encoded_bytes()),
        &TransferOptions::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    );
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keep"], "something was written outside the tree");
    let made: Vec<_> = std::fs::read_dir(&dst).unwrap().collect();
    assert!(made.is_empty(), "the destination was written: {made:?}");
    r.expect_err("a hostile agent's transfer must fail")
}

#[test]
fn an_entry_under_a_symlink_is_refused_whole() {
    let e = transfer_from(Evil::EntryUnderSymlink).to_string();
    assert!(e.contains("old") && e.contains("refused whole"), "{e}");
    assert!(e.contains("not a directory"), "{e}");
}

#[test]
fn a_hard_link_index_out_of_range_is_refused_not_a_panic() {
    let e = transfer_from(Evil::LinkOutOfRange).to_string();
    assert!(
        e.contains("old") && e.contains("hard-link index 4242"),
        "{e}"
    );
}

#[test]
fn an_endless_manifest_is_cut_off_at_the_limit() {
    // SAFETY: the other tests of this binary read this variable only for manifests far below
    // either value.
    unsafe { std::env::set_var("REHOST_MAX_MANIFEST_BYTES", (64u64 << 20).to_string()) };
    let e = transfer_from(Evil::EndlessManifest).to_string();
    assert!(
        e.contains("old") && e.contains("larger than 67108864 bytes"),
        "{e}"
    );
    assert!(e.contains("REHOST_MAX_MANIFEST_BYTES"), "{e}");
}

#[test]
fn more_or_longer_file_pieces_than_asked_are_refused() {
    let e = transfer_from(Evil::OversizedPieces).to_string();
    assert!(
        e.contains("old") && e.contains("longer than the 4 bytes asked for"),
        "{e}"
    );
}

#[test]
fn more_probe_answers_than_paths_are_refused() {
    let old = FakeAgent {
        evil: Evil::ExtraProbes,
        outside: PathBuf::from("/nonexistent"),
    };
    let e = old
        .probe(&[b"/srv".as_slice()], true, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("old") && e.contains("more than the 1 probes asked for"),
        "{e}"
    );
}

#[test]
fn a_connection_listing_beyond_what_was_asked_is_refused() {
    let old = FakeAgent {
        evil: Evil::ExtraConnections,
        outside: PathBuf::from("/nonexistent"),
    };
    let no = AtomicBool::new(false);
    let e = old.connections(&[5432], 1, &no).unwrap_err().to_string();
    assert!(
        e.contains("old") && e.contains("sent 2 connections, more than the 1 asked for"),
        "{e}"
    );
    let e = old.connections(&[5432], 2, &no).unwrap_err().to_string();
    assert!(
        e.contains("sent a connection to port 5433, which was not asked for"),
        "{e}"
    );
    let e = old.connections(&[5432], 3, &no).unwrap_err().to_string();
    assert!(e.contains("sent a second connection listing"), "{e}");
    // A process name from the host reaches a terminal escaped.
    let c = rehost_host::conns::Connection {
        local_addr: [127, 0, 0, 1].into(),
        local_port: 1,
        peer_addr: [10, 0, 0, 1].into(),
        peer_port: 2,
        send_queue: 0,
        recv_queue: 0,
        uid: 0,
        inode: 1,
        pid: Some(7),
        command: Some("\x1b]0;evil\x07".into()),
    };
    assert!(!c.process().contains('\x1b'), "{}", c.process());
}

#[test]
fn a_key_scan_answered_out_of_order_is_refused() {
    let old = FakeAgent {
        evil: Evil::LyingKeyScan,
        outside: PathBuf::from("/nonexistent"),
    };
    let no = AtomicBool::new(false);
    let e = rehost_host::scan_keys(&old, &["/etc"], &no)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("old") && e.contains("refused: an answer `keys_found` to a key scan"),
        "{e}"
    );
    let e = rehost_host::scan_keys(&old, &["/etc", "/srv"], &no)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("old") && e.contains("the key scan ended without its summary"),
        "{e}"
    );
    let e = rehost_host::scan_keys(&old, &["/etc", "/srv", "/var"], &no)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("refused: an answer `connected` to a key scan"),
        "{e}"
    );
    // A summary claiming more files left unopened by its cache than it examined, and ten
    // thousand notes: bounded (the notes are escaped where shown, as every host's text).
    let s = rehost_host::scan_keys(&old, &["/etc", "/srv", "/var", "/opt"], &no).unwrap();
    assert_eq!((s.files, s.cached), (3, 3));
    assert_eq!(s.notes.len(), 8);
}

#[test]
fn a_reference_scan_that_names_what_was_not_asked_or_says_too_much_is_refused() {
    let old = FakeAgent {
        evil: Evil::LyingRefScan,
        outside: PathBuf::from("/nonexistent"),
    };
    let no = AtomicBool::new(false);
    let needles = [rehost_refs::Needle::parse("10.0.0.1").unwrap()];
    let scan = |paths: &[&str]| {
        rehost_host::scan_refs(&old, paths, &needles, &no)
            .unwrap_err()
            .to_string()
    };
    for e in [scan(&["/etc"]), scan(&["/etc", "/srv"])] {
        assert!(
            e.contains("old") && e.contains("names no needle asked for, or is too long"),
            "{e}"
        );
    }
    let e = scan(&["/etc", "/srv", "/var"]);
    assert!(
        e.contains("refused: an answer `refs_scanned` to a reference scan"),
        "{e}"
    );
}

/// A fake agent on the far side of real frames (protocol 4: a JSON header, then content as raw
/// bytes): a child process that answers the hello and then writes `script` whatever it is asked,
/// through [`AgentConn`] exactly as an ssh session's agent would be read. The manifest of
/// [`FakeAgent`] (one file `f` of 4 bytes) is answered in-process; every other request goes
/// to the child.
struct FramedAgent {
    script: Vec<u8>,
    dir: tempfile::TempDir,
}

impl FramedAgent {
    fn new(script: Vec<u8>) -> FramedAgent {
        FramedAgent {
            script,
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Host for FramedAgent {
    fn name(&self) -> &str {
        "old"
    }

    fn resolve(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }

    fn remote_end(&self, _path: &str, _here: bool) -> Option<rehost_host::RemoteEnd> {
        None
    }

    fn request(
        &self,
        req: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        if let Request::Manifest { .. } = req {
            let fake = FakeAgent {
                evil: Evil::OversizedPieces,
                outside: PathBuf::from("/nonexistent"),
            };
            on_response(Response::ManifestData {
                data: Blob::from(fake.manifest().to_binary()),
            });
            return Ok(());
        }
        let mut out = Vec::new();
        write_frame(
            &mut out,
            &AgentFrame::Hello {
                protocol: PROTOCOL_VERSION,
                version: "fake".into(),
                arch: std::env::consts::ARCH.into(),
            },
        )
        .unwrap();
        out.extend_from_slice(&self.script);
        let file = self.dir.path().join("script");
        std::fs::write(&file, out).unwrap();
        // Writes the script, then reads (and drops) what rehost sends until it hangs up; its
        // output ends with the script.
        let child = std::process::Command::new("sh")
            .args(["-c", "cat \"$0\"; exec cat >/dev/null"])
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (mut conn, _) =
            AgentConn::start(child, "old", None, std::time::Duration::from_secs(10))
                .map_err(|e| e.for_host("old", "starting"))?;
        conn.request(req, cancel, on_response)
            .map_err(|e| e.for_host("old", &req.describe()))
    }
}

/// One frame as the agent writes it, for request 1: `header` JSON, `content` after it with a
/// content length of `claim` (the true length unless a test lies).
fn frame(header: &str, content: &[u8], claim: Option<u32>) -> Vec<u8> {
    let mut f = Vec::new();
    let has = claim.is_some() || !content.is_empty();
    let n = header.len() as u32 | if has { 1 << 31 } else { 0 };
    f.extend(n.to_be_bytes());
    if has {
        f.extend(claim.unwrap_or(content.len() as u32).to_be_bytes());
    }
    f.extend(header.as_bytes());
    f.extend(content);
    f
}

const FILE_DATA: &str = r#"{"type":"response","id":1,"response":{"kind":"file_data"}}"#;
const END: &str = r#"{"type":"end","id":1}"#;

/// Transfers from a [`FramedAgent`] writing `script` into a fresh tree: the error, with the
/// destination checked empty.
fn transfer_framed(script: Vec<u8>) -> String {
    let outer = tempfile::tempdir().unwrap();
    let dst = outer.path().join("new");
    let old = FramedAgent::new(script);
    let new = LocalHost::new("new", None);
    let r = transfer_between(
        (&old, b"/srv".as_slice()),
        (&new, dst.as_os_str().as_encoded_bytes()),
        &TransferOptions::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    );
    let made: Vec<_> = std::fs::read_dir(&dst).unwrap().collect();
    assert!(made.is_empty(), "the destination was written: {made:?}");
    r.expect_err("a hostile agent's transfer must fail")
        .to_string()
}

#[test]
fn a_frame_claiming_more_content_than_the_limit_is_refused_before_allocating() {
    // Only the lengths are sent: the claim alone must be refused.
    let script = frame(FILE_DATA, b"", Some(MAX_DATA as u32 + 1))[..8].to_vec();
    let e = transfer_framed(script);
    assert!(e.contains("old") && e.contains("refused"), "{e}");
    assert!(
        e.contains(&format!(
            "content of {} bytes exceeds the limit",
            MAX_DATA + 1
        )),
        "{e}"
    );
}

#[test]
fn more_bytes_than_the_frame_claims_are_refused() {
    // The header says 4 bytes; 18 follow. The extra bytes are not a frame.
    let mut script = frame(FILE_DATA, b"evil", None);
    script.extend(b" and then some");
    script.extend(frame(END, b"", None));
    let e = transfer_framed(script);
    assert!(e.contains("old") && e.contains("refused"), "{e}");
    assert!(
        e.contains("exceeds the limit") || e.contains("decode"),
        "{e}"
    );
}

#[test]
fn a_frame_cut_off_in_its_content_is_an_error_naming_the_host() {
    let mut script = frame(FILE_DATA, b"", Some(1000));
    script.extend(b"only ten b");
    let e = transfer_framed(script);
    assert!(
        e.contains("host old") && e.contains("connection was lost"),
        "{e}"
    );
    assert!(e.contains("the agent's output was cut off"), "{e}");
    assert!(
        e.contains("in the middle of a frame, in its content"),
        "{e}"
    );
}

#[test]
fn content_for_a_file_not_asked_for_is_refused() {
    // One piece asked for; two arrive.
    let mut script = frame(FILE_DATA, b"evil", None);
    script.extend(frame(FILE_DATA, b"evil", None));
    script.extend(frame(END, b"", None));
    let e = transfer_framed(script);
    assert!(
        e.contains("old") && e.contains("more than the 1 file pieces asked for"),
        "{e}"
    );
}

#[test]
fn content_longer_than_the_piece_asked_for_is_refused() {
    let mut script = frame(FILE_DATA, b"evil and then some", None);
    script.extend(frame(END, b"", None));
    let e = transfer_framed(script);
    assert!(
        e.contains("old") && e.contains("longer than the 4 bytes asked for"),
        "{e}"
    );
}

#[test]
fn content_on_a_message_that_carries_none_is_refused() {
    let probed = r#"{"type":"response","id":1,"response":{"kind":"file_error","message":"x"}}"#;
    let mut script = frame(probed, b"smuggled", None);
    script.extend(frame(END, b"", None));
    let e = transfer_framed(script);
    assert!(e.contains("old") && e.contains("refused"), "{e}");
    assert!(
        e.contains("8 bytes of content for a message that carries none (file_error)"),
        "{e}"
    );
}

#[test]
fn a_survey_answered_with_garbage_or_too_much_is_refused_whole() {
    let old = FakeAgent {
        evil: Evil::LyingSurvey,
        outside: PathBuf::from("/nonexistent"),
    };
    let no = AtomicBool::new(false);
    let survey = |seconds: u64| {
        let options = rehost_host::survey::SurveyOptions {
            sample_seconds: seconds,
            interval_ms: 0,
        };
        let mut shown = Vec::new();
        let e = old
            .survey(&options, &no, &mut |p| shown.push(p.stage.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("old"), "{e}");
        assert!(shown.is_empty(), "{shown:?}");
        e
    };
    let e = survey(1);
    assert!(
        e.contains("refused whole: the inventory does not read"),
        "{e}"
    );
    let e = survey(2);
    assert!(
        e.contains("refused: an inventory larger than 67108864 bytes"),
        "{e}"
    );
    let e = survey(3);
    assert!(
        e.contains("refused whole: a string of 9000 bytes at `.system.hostname`"),
        "{e}"
    );
    let e = survey(4);
    assert!(e.contains("the survey said 1 bytes and sent"), "{e}");
    let e = survey(5);
    assert!(
        e.contains("refused: an answer `connected` to a survey"),
        "{e}"
    );
    let e = survey(6);
    assert!(e.contains("the survey ended without its summary"), "{e}");
    let e = survey(7);
    assert!(
        e.contains("refused: a progress text of 100000 bytes"),
        "{e}"
    );
}
