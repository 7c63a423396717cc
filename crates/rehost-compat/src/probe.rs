//! Probe files: requests and client commands written by hand, run against the old and the new
//! service and compared like replayed traffic (the old one asked twice for noise).
//!
//! ```toml
//! [[request]]
//! name = "items"                     # optional; the endpoint is METHOD PATH
//! method = "GET"                     # default GET
//! path = "/api/items?page=1"
//! headers = { Accept = "application/json" }
//! body = ""                          # text; default empty
//!
//! [[command]]
//! name = "old curl"
//! run = "curl -s http://{host}:{port}/api/items"
//! timeout = 30                       # seconds, default 30
//! ```
//!
//! A command is run by `sh -c` on this machine with `{host}` and `{port}` replaced by the
//! side's; its exit status, standard output and standard error are compared (output as JSON
//! paths, lines or digest), each at most [`OUTPUT_CAP`] bytes.

use crate::diff::{self, Difference};
use crate::replay::{Endpoint, Example, FieldCount, Listed, Options, Summary, Target};
use crate::traffic::{Exchange, Field, RecordedRequest};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The most output kept of a command, per stream.
pub const OUTPUT_CAP: u64 = 16 * 1024 * 1024;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProbeFile {
    #[serde(default)]
    pub request: Vec<ProbeRequest>,
    #[serde(default)]
    pub command: Vec<ProbeCommand>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

fn get() -> String {
    "GET".into()
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProbeCommand {
    pub name: String,
    pub run: String,
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// Reads a probe file's text; errors name the key or line.
pub fn parse(text: &str) -> Result<ProbeFile, String> {
    let f: ProbeFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if f.request.is_empty() && f.command.is_empty() {
        return Err("no [[request]] and no [[command]]: nothing to probe".into());
    }
    for c in &f.command {
        if let Some(t) = c.timeout
            && !(t.is_finite() && t > 0.0 && t <= 3600.0)
        {
            return Err(format!(
                "command {:?}: timeout {t}: give seconds between 0 and 3600",
                c.name
            ));
        }
    }
    Ok(f)
}

/// Runs a probe file's requests (through replay) and commands against old and new.
pub fn probe(
    file: &ProbeFile,
    old: &Target,
    new: &Target,
    opts: &Options,
    cancel: &AtomicBool,
) -> Summary {
    let b64 = base64::engine::general_purpose::STANDARD;
    let items = file.request.iter().enumerate().map(|(i, r)| {
        (
            i + 1,
            Ok(Exchange {
                request: RecordedRequest {
                    method: r.method.clone(),
                    target: r.path.clone(),
                    headers: r
                        .headers
                        .iter()
                        .map(|(n, v)| Field {
                            name: n.clone(),
                            value: Some(v.clone()),
                            value_b64: None,
                        })
                        .collect(),
                    body: b64.encode(r.body.as_bytes()),
                },
                response: None,
                truncated: false,
            }),
        )
    });
    let mut s = crate::replay::replay_items(items, old, new, opts, cancel);
    for (i, c) in file.command.iter().enumerate() {
        if cancel.load(std::sync::atomic::Ordering::SeqCst) {
            s.interrupted = true;
            break;
        }
        command(&mut s, i + 1, c, old, new, opts);
    }
    s.same = s.compared - s.differing - s.allowed;
    s
}

/// One run of a command: exit status, output, error output.
struct Ran {
    status: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// The command with the side's host and port in place. The host was checked to be a name or
/// an address (no shell syntax).
pub fn expand(template: &str, side: &Target) -> Result<String, String> {
    if !side
        .host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:_".contains(&b))
    {
        return Err(format!(
            "{}: the host is not a plain name or address; it is not put into a shell command",
            side.url
        ));
    }
    Ok(template
        .replace("{host}", &side.host)
        .replace("{port}", &side.port.to_string()))
}

fn run(cmd: &str, timeout: Duration) -> Result<Ran, String> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start sh: {e}"))?;
    let read = |mut p: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = (&mut p).take(OUTPUT_CAP).read_to_end(&mut v);
            // Drain the rest so the command is not blocked on a full pipe.
            let _ = std::io::copy(&mut p, &mut std::io::sink());
            v
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped")));
    let err = read(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} s (killed)",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let status = match status.code() {
        Some(c) => format!("exit {c}"),
        None => "killed by a signal".into(),
    };
    Ok(Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn compare(a: &Ran, b: &Ran) -> Vec<Difference> {
    let mut d = Vec::new();
    if a.status != b.status {
        d.push(Difference {
            field: "exit status".into(),
            a: a.status.clone(),
            b: b.status.clone(),
        });
    }
    d.extend(diff::output_diff("stdout", &a.stdout, &b.stdout));
    d.extend(diff::output_diff("stderr", &a.stderr, &b.stderr));
    d
}

fn command(
    s: &mut Summary,
    n: usize,
    c: &ProbeCommand,
    old: &Target,
    new: &Target,
    opts: &Options,
) {
    let endpoint = format!("command {}", c.name);
    let timeout = c
        .timeout
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30));
    let fail = |s: &mut Summary, why: String| {
        s.failed += 1;
        s.failures.push(Listed {
            line: n,
            method: "command".into(),
            target: c.name.clone(),
            why,
        });
    };
    let runs = (|| -> Result<_, String> {
        let (co, cn) = (expand(&c.run, old)?, expand(&c.run, new)?);
        let a = run(&co, timeout).map_err(|e| format!("against {}: {e}", old.url))?;
        let b = run(&cn, timeout).map_err(|e| format!("against {}: {e}", new.url))?;
        let again = if opts.again {
            Some(run(&co, timeout).map_err(|e| format!("against {}: {e}", old.url))?)
        } else {
            None
        };
        Ok((a, b, again))
    })();
    let (a, b, again) = match runs {
        Ok(r) => r,
        Err(e) => return fail(s, e),
    };
    let d = compare(&a, &b);
    let noise: BTreeSet<String> = again
        .map(|c| compare(&a, &c).into_iter().map(|d| d.field).collect())
        .unwrap_or_default();
    let allowed = |f: &str| opts.allow.iter().any(|g| crate::replay::glob_match(g, f));
    let differences: Vec<FieldCount> = d
        .into_iter()
        .filter(|d| !noise.contains(&d.field))
        .map(|d| FieldCount {
            allowed: allowed(&d.field),
            field: d.field,
            count: 1,
            examples: vec![Example {
                line: n,
                // The name, not the command line: it may carry a password.
                target: c.name.clone(),
                old: d.a,
                new: d.b,
            }],
        })
        .collect();
    s.compared += 1;
    let real = differences.iter().any(|f| !f.allowed);
    if real {
        s.differing += 1;
    } else if !differences.is_empty() {
        s.allowed += 1;
    }
    s.endpoints.push(Endpoint {
        endpoint,
        requests: 1,
        differing: u64::from(real),
        differences,
        noise: noise
            .into_iter()
            .map(|field| FieldCount {
                field,
                allowed: false,
                count: 1,
                examples: Vec::new(),
            })
            .collect(),
    });
}
