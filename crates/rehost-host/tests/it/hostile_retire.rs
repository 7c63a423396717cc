//! Keeping old data read-only on a hostile host (`retire-old`, issue 24): an agent that answers
//! a `ReadOnly` with paths outside the tree, more changes than it says it made, a second
//! summary, changes to a check, or lists beyond their bounds, and a `RestoreModes` with
//! counts that do not add up. rehost refuses the answer whole, naming the host; nothing it
//! sent is passed on.

use rehost_host::agent::{Request, Response};
use rehost_host::retire::{ModeChange, ReadOnlyAction, ReadOnlySummary, RestoreSummary};
use rehost_host::{Bytes, Host, HostError};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Lie {
    /// A change of `../../etc/shadow`.
    Escape,
    /// A change of `/etc/passwd` (absolute).
    Absolute,
    /// Sends 2 changes and says it made 1.
    Miscount,
    /// Two summaries.
    TwoSummaries,
    /// Changes in answer to a check.
    ChangesToCheck,
    /// A summary listing 101 writable paths.
    LongList,
    /// A writable path with `..`.
    WritableEscape,
    /// No summary at all.
    Silent,
    /// A restore that answers 1 change with 5 restored.
    RestoreMiscount,
    /// A listening socket on a port it was not asked about.
    ListeningNotAsked,
    /// A listening socket whose address is a terminal escape, not an address.
    ListeningGarbage,
    /// Two listings.
    ListeningTwice,
}

struct Liar(Lie);

fn change(path: &str) -> ModeChange {
    ModeChange {
        path: Bytes::from(path),
        ino: 1,
        before: 0o644,
        after: 0o444,
    }
}

impl Host for Liar {
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
        _cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        let mut summary = ReadOnlySummary {
            entries: 1,
            changed: 1,
            ..Default::default()
        };
        let mut out = Vec::new();
        let socket = |address: &str, port: u16| rehost_host::retire::Listening {
            address: address.into(),
            port,
        };
        match (req, self.0) {
            (Request::Listening { .. }, lie) => {
                let sockets = match lie {
                    Lie::ListeningNotAsked => vec![socket("0.0.0.0", 22)],
                    Lie::ListeningGarbage => vec![socket("\x1b[2J", 8080)],
                    _ => vec![socket("127.0.0.1", 8080)],
                };
                let n = if lie == Lie::ListeningTwice { 2 } else { 1 };
                for _ in 0..n {
                    on_response(Response::Listening {
                        sockets: sockets.clone(),
                        gaps: Vec::new(),
                    });
                }
                return Ok(());
            }
            (Request::RestoreModes { .. }, _) => out.push(Response::ModesRestored {
                summary: RestoreSummary {
                    restored: 5,
                    ..Default::default()
                },
            }),
            (Request::ReadOnly { .. }, Lie::Escape) => out.push(Response::ModesChanged {
                changes: vec![change("../../etc/shadow")],
            }),
            (Request::ReadOnly { .. }, Lie::Absolute) => out.push(Response::ModesChanged {
                changes: vec![change("/etc/passwd")],
            }),
            (Request::ReadOnly { .. }, Lie::Miscount) => out.push(Response::ModesChanged {
                changes: vec![change("a"), change("b")],
            }),
            (Request::ReadOnly { .. }, Lie::TwoSummaries) => {
                out.push(Response::ModesChanged {
                    changes: vec![change("a")],
                });
                out.push(Response::ReadOnlyDone {
                    summary: summary.clone(),
                });
            }
            (Request::ReadOnly { .. }, Lie::ChangesToCheck) => out.push(Response::ModesChanged {
                changes: vec![change("a")],
            }),
            (Request::ReadOnly { .. }, Lie::LongList) => {
                summary.changed = 0;
                summary.writable = (0..101)
                    .map(|i| Bytes::from(format!("f{i}").as_str()))
                    .collect();
            }
            (Request::ReadOnly { .. }, Lie::WritableEscape) => {
                summary.changed = 0;
                summary.writable = vec![Bytes::from("a/../../b")];
            }
            (Request::ReadOnly { .. }, Lie::Silent) => {
                return Ok(());
            }
            (r, l) => panic!("not scripted: {r:?} {l:?}"),
        }
        if !matches!(req, Request::RestoreModes { .. }) {
            out.push(Response::ReadOnlyDone { summary });
        }
        for r in out {
            on_response(r);
        }
        Ok(())
    }
}

fn refusal(lie: Lie, action: ReadOnlyAction) -> String {
    let mut passed = Vec::new();
    let e = Liar(lie)
        .read_only("/srv/data", action, &AtomicBool::new(false), &mut |c| {
            passed.extend(c);
            Ok(())
        })
        .expect_err("refused");
    let text = e.to_string();
    assert!(text.contains("old"), "names the host: {text}");
    assert!(
        passed
            .iter()
            .all(|c| !c.path.as_bytes().starts_with(b"/")
                && !c.path.to_string_lossy().contains("..")),
        "no path outside the tree is passed on: {passed:?}"
    );
    text
}

#[test]
fn a_change_outside_the_tree_is_refused_whole() {
    for lie in [Lie::Escape, Lie::Absolute] {
        let e = refusal(lie, ReadOnlyAction::Apply);
        assert!(e.contains("not inside the tree"), "{lie:?}: {e}");
    }
}

#[test]
fn counts_summaries_and_lists_that_do_not_hold_are_refused() {
    let e = refusal(Lie::Miscount, ReadOnlyAction::Apply);
    assert!(e.contains("said it changed 1 mode(s) but sent 2"), "{e}");
    let e = refusal(Lie::TwoSummaries, ReadOnlyAction::Apply);
    assert!(e.contains("second summary"), "{e}");
    let e = refusal(Lie::ChangesToCheck, ReadOnlyAction::Check);
    assert!(e.contains("not asked for"), "{e}");
    let e = refusal(Lie::LongList, ReadOnlyAction::Check);
    assert!(e.contains("more than 100"), "{e}");
    let e = refusal(Lie::WritableEscape, ReadOnlyAction::Check);
    assert!(e.contains("not inside the tree"), "{e}");
    let e = refusal(Lie::Silent, ReadOnlyAction::Check);
    assert!(e.contains("no summary"), "{e}");
}

#[test]
fn a_restore_whose_counts_do_not_add_up_is_refused() {
    let e = Liar(Lie::RestoreMiscount)
        .restore_modes("/srv/data", &[change("a")], &AtomicBool::new(false))
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("answered 1 mode change(s) with 5 restored"),
        "{e}"
    );
}

#[test]
fn a_listing_of_listening_sockets_that_does_not_hold_is_refused() {
    for (lie, words) in [
        (Lie::ListeningNotAsked, "not asked for: 0.0.0.0:22"),
        (Lie::ListeningGarbage, "not asked for: \\u{1b}[2J:8080"),
        (Lie::ListeningTwice, "a second listing"),
    ] {
        let e = Liar(lie)
            .listening(&[8080], &AtomicBool::new(false))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("old") && e.contains(words), "{lie:?}: {e}");
        assert!(!e.contains('\x1b'), "escaped: {e}");
    }
}
