//! `rehost compat replay` against real HTTP services on loopback (`rehost_test::http::Server`,
//! std threads, its own parser): the new version's changed JSON field is reported with its
//! endpoint and path, a field that differs on every call is noise, writes are refused unless
//! allowed (the servers count what reached them), credentials are never shown, and a hostile
//! server's answers are errors naming it, never a panic.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::http::{Reply, Seen, Server};
use std::sync::atomic::{AtomicU64, Ordering};

fn json(o: &rehost_test::Output) -> serde_json::Value {
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.all()))
}

/// One traffic line for a request without headers; `body_b64` is the body in base64.
fn line(method: &str, target: &str, headers: &[(&str, &str)], body_b64: &str) -> String {
    let hs: Vec<serde_json::Value> = headers
        .iter()
        .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
        .collect();
    serde_json::json!({
        "request": {"method": method, "target": target, "headers": hs, "body": body_b64}
    })
    .to_string()
}

fn traffic(lines: &[String]) -> String {
    let mut s = String::from("{\"rehost_traffic\":1}\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// The service in two versions: `price` is 10 on the old one and `new_price` on the new one;
/// `generated_at` changes on every call (a clock), `request_id` too.
fn service(new_price: u32) -> Server {
    let calls = AtomicU64::new(0);
    Server::start(move |req: &Seen| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let path = req.target.split('?').next().unwrap_or("");
        match (req.method.as_str(), path) {
            ("GET", "/api/items") => Reply::json(&format!(
                r#"{{"items":[{{"id":1,"price":{new_price}}},{{"id":2,"price":5}}],"generated_at":"2026-12-07T01:00:{:02}Z","request_id":"r{n}"}}"#,
                n % 60
            )),
            ("GET" | "HEAD", "/api/status") => {
                let mut r = Reply::json(&format!(r#"{{"ok":true,"uptime":{n}}}"#));
                r.chunked = true;
                r
            }
            ("GET", "/page") => {
                let mut r = Reply::json("");
                r.headers = vec![("Content-Type".into(), "text/html".into())];
                r.body = format!("<h1>hello</h1>\n<p>served {n}</p>\n").into_bytes();
                r
            }
            ("POST" | "DELETE", _) => Reply::json(r#"{"done":true}"#),
            _ => {
                let mut r = Reply::json(r#"{"error":"not found"}"#);
                r.status = 404;
                r
            }
        }
    })
}

fn recorded() -> String {
    traffic(&[
        line(
            "GET",
            "/api/items?page=1",
            &[("Accept", "application/json")],
            "",
        ),
        line("GET", "/api/items?page=2", &[], ""),
        line("GET", "/api/status", &[], ""),
        line("HEAD", "/api/status", &[], ""),
        line("GET", "/page", &[], ""),
        line(
            "POST",
            "/api/items",
            &[("Content-Type", "text/plain")],
            "aGVsbG8=",
        ),
        line("DELETE", "/api/items/1", &[], ""),
    ])
}

#[test]
fn replay_reports_the_changed_field_and_counts_the_clock_as_noise() {
    let d = TestDir::new();
    d.write("traffic.jsonl", recorded());
    let old = service(10);
    let new = service(11);
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &old.url(),
            "--new",
            &new.url(),
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let v = json(&o);
    assert_eq!(v["result"], "differ");
    assert_eq!(v["exchanges"], 7);
    assert_eq!(v["compared"], 5);
    assert_eq!(v["differing"], 2);
    assert_eq!(v["same"], 3);
    let eps = v["endpoints"].as_array().unwrap();
    let ep = |name: &str| {
        eps.iter()
            .find(|e| e["endpoint"] == name)
            .unwrap_or_else(|| panic!("no endpoint {name}: {v}"))
    };
    let items = ep("GET /api/items");
    assert_eq!(items["requests"], 2);
    assert_eq!(items["differing"], 2);
    let fields: Vec<&str> = items["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["$.items[0].price"], "{v}");
    let ex = &items["differences"][0]["examples"][0];
    assert_eq!(
        (
            ex["old"].as_str(),
            ex["new"].as_str(),
            ex["target"].as_str()
        ),
        (Some("10"), Some("11"), Some("/api/items?page=1"))
    );
    let noise: Vec<&str> = items["noise"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(noise, ["$.generated_at", "$.request_id"], "{v}");
    // The chunked status answer's counter and the page's text line are noise, not differences.
    assert_eq!(ep("GET /api/status")["differing"], 0);
    assert_eq!(ep("GET /api/status")["noise"][0]["field"], "$.uptime");
    assert_eq!(ep("HEAD /api/status")["differing"], 0);
    assert_eq!(ep("GET /page")["differing"], 0);
    assert_eq!(ep("GET /page")["noise"][0]["field"], "body line 2");
    // The writes were listed, not sent.
    assert_eq!(v["refused_writes"], 2);
    assert_eq!(v["refused"][0]["method"], "POST");
    assert_eq!(v["refused"][1]["target"], "/api/items/1");
    for s in [&old, &new] {
        assert_eq!(s.count("POST") + s.count("DELETE"), 0);
    }
    // Old was asked twice for every safe request, new once.
    assert_eq!(old.count("GET"), 8);
    assert_eq!(new.count("GET"), 4);
    assert!(v["not_compared"].as_str().unwrap().contains("Date"));

    // The same as text: the endpoint, the field, an example, the noise, the verdict.
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &old.url(),
            "--new",
            &new.url(),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    for part in [
        "GET /api/items: 2 requests, 2 differ",
        "  $.items[0].price: differs in 2",
        "old 10 | new 11",
        "noise (the old service differs from itself; not reported): $.generated_at (2), $.request_id (2)",
        "refused 2 writes (not sent",
        "line 8: DELETE /api/items/1",
        "not compared: hop-by-hop headers",
        "differ: 2 of 5 compared requests answered differently; 2 writes refused and 0 truncated exchanges not compared",
    ] {
        assert!(o.stdout.contains(part), "missing {part:?} in\n{}", o.stdout);
    }

    // Declared as expected, the price is listed as allowed and the replay passes.
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &old.url(),
            "--new",
            &new.url(),
            "--allow",
            "$.items[?].price",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("  $.items[0].price: differs in 2 (allowed: an expected difference)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("; 2 requests differ only in allowed fields"),
        "{}",
        o.stdout
    );

    // Old against an identical copy of itself: the same, exit 0, the noise still counted.
    let same = service(10);
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &old.url(),
            "--new",
            &same.url(),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("same: 5 compared requests answered the same"),
        "{}",
        o.stdout
    );

    // Without the second question to old, the clock is a difference.
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &old.url(),
            "--new",
            &same.url(),
            "--no-noise",
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(o.stdout.contains("$.generated_at"), "{}", o.stdout);
}

#[test]
fn writes_are_sent_once_to_each_side_only_with_allow_writes() {
    let d = TestDir::new();
    d.write("traffic.jsonl", recorded());
    let old = service(10);
    let new = service(10);
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &old.url(),
            "--new",
            &new.url(),
            "--allow-writes",
            "--concurrency",
            "3",
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let v = json(&o);
    assert_eq!(v["refused_writes"], 0);
    assert_eq!(v["compared"], 7);
    for s in [&old, &new] {
        assert_eq!(s.count("POST"), 1);
        assert_eq!(s.count("DELETE"), 1);
        let post = s.seen().into_iter().find(|r| r.method == "POST").unwrap();
        assert_eq!(post.body, b"hello");
        assert_eq!(post.header("content-type"), Some("text/plain"));
        // Host names the side replayed against, not the recorded one.
        assert_eq!(
            post.header("host"),
            Some(&*format!("127.0.0.1:{}", s.port()))
        );
    }
}

#[test]
fn credentials_are_replayed_but_never_shown() {
    let d = TestDir::new();
    d.write(
        "traffic.jsonl",
        traffic(&[line(
            "GET",
            "/me?api_key=query-secret-1&page=1",
            &[
                ("Authorization", "Bearer header-secret-2"),
                ("Cookie", "sid=cookie-secret-3"),
            ],
            "",
        )]),
    );
    let mk = |cookie: &'static str| {
        Server::start(move |_req: &Seen| {
            let mut r = Reply::json(r#"{"user":"ann"}"#);
            r.headers.push((
                "Set-Cookie".into(),
                format!("{cookie}=set-secret-4; Path=/"),
            ));
            r
        })
    };
    let (old, new) = (mk("sid"), mk("session"));
    for json in [false, true] {
        let (old_url, new_url) = (old.url(), new.url());
        let mut args = vec![
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &old_url,
            "--new",
            &new_url,
        ];
        if json {
            args.push("--json");
        }
        let o = rehost(&d, &args);
        assert_eq!(o.code, 1, "{}", o.all());
        assert!(o.all().contains("header set-cookie"), "{}", o.all());
        assert!(o.all().contains("(credential, not shown)"), "{}", o.all());
        assert!(
            o.all().contains("api_key=(not shown)&page=1"),
            "{}",
            o.all()
        );
        for secret in [
            "query-secret-1",
            "header-secret-2",
            "cookie-secret-3",
            "set-secret-4",
        ] {
            assert!(!o.all().contains(secret), "{secret} shown:\n{}", o.all());
        }
    }
    // The credentials did reach both servers: replay needs them.
    for s in [&old, &new] {
        let r = &s.seen()[0];
        assert_eq!(r.header("authorization"), Some("Bearer header-secret-2"));
        assert_eq!(r.header("cookie"), Some("sid=cookie-secret-3"));
    }
}

#[test]
fn a_hostile_server_is_an_error_naming_it_never_a_panic() {
    let d = TestDir::new();
    d.write(
        "traffic.jsonl",
        traffic(&[
            line("GET", "/huge", &[], ""),
            line("GET", "/endless-header", &[], ""),
            line("GET", "/bad-chunk", &[], ""),
            line("GET", "/garbage", &[], ""),
        ]),
    );
    let good = service(10);
    let evil = Server::start(|req: &Seen| match req.target.as_str() {
        "/huge" => Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\nabc"),
        "/endless-header" => {
            let mut b = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
            b.extend(std::iter::repeat_n(b'a', 300_000));
            Reply::raw(b)
        }
        "/bad-chunk" => Reply::raw(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n",
        ),
        _ => Reply::raw(b"\x1b[31mNOT HTTP\x00\xff\r\n\r\n".to_vec()),
    });
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "traffic.jsonl",
            "--old",
            &good.url(),
            "--new",
            &evil.url(),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(!o.all().contains("panicked"), "{}", o.all());
    assert!(
        !o.all().contains('\x1b'),
        "an escape sequence reached the terminal: {}",
        o.all()
    );
    let named = format!("{} answered no usable response", evil.url());
    for (path, why) in [
        (
            "/huge",
            "longer than the cap of 67108864 bytes (Content-Length 10737418240)",
        ),
        ("/endless-header", "the head is longer than 65536 bytes"),
        (
            "/bad-chunk",
            "chunk size \"fffffffffffffffffffff\" is not a hexadecimal number",
        ),
        ("/garbage", "malformed head"),
    ] {
        let l = o
            .stdout
            .lines()
            .find(|l| l.contains(&format!("GET {path}:")))
            .unwrap_or_else(|| panic!("{path} not listed:\n{}", o.stdout));
        assert!(l.contains(&named) && l.contains(why), "{path}: {l}");
    }
    assert!(
        o.stdout.contains("trouble: 4 requests failed"),
        "{}",
        o.stdout
    );

    // A file that is not a traffic file, and a version this rehost does not read.
    d.write("bad.jsonl", "GET / HTTP/1.1\n");
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "bad.jsonl",
            "--old",
            &good.url(),
            "--new",
            &good.url(),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("bad.jsonl: line 1 is not {\"rehost_traffic\":1}"),
        "{}",
        o.stderr
    );
    d.write("v9.jsonl", "{\"rehost_traffic\":9}\n");
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "v9.jsonl",
            "--old",
            &good.url(),
            "--new",
            &good.url(),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("traffic format version 9; this rehost reads version 1"),
        "{}",
        o.stderr
    );
    // A line whose target would smuggle a second request is refused, not sent.
    d.write(
        "smuggle.jsonl",
        traffic(&[line("GET", "/a HTTP/1.1\r\nX: y", &[], "")]),
    );
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "smuggle.jsonl",
            "--old",
            &good.url(),
            "--new",
            &good.url(),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stdout.contains("line 2: GET"), "{}", o.stdout);
    assert!(
        o.stdout.contains("is not an origin-form path"),
        "{}",
        o.stdout
    );
}

/// `rehost compat record` running as its own process until SIGTERM.
struct Recorder {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    addr: String,
}

impl Recorder {
    fn start(dir: &TestDir, upstream: &Server, extra: &[&str]) -> Recorder {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin())
            .current_dir(dir.path())
            .args(["compat", "record", "--listen", "127.0.0.1:0", "--upstream"])
            .arg(format!("127.0.0.1:{}", upstream.port()))
            .args(["--out", "rec.jsonl"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start rehost compat record");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        assert!(first.contains("mode 0600"), "{first}");
        Recorder {
            child,
            stdout,
            addr,
        }
    }

    /// SIGTERM, then what it printed at the end and its exit code.
    fn stop(mut self) -> (String, i32) {
        use std::io::Read;
        // SAFETY: kill with the child's own PID and SIGTERM.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (rest, status.code().unwrap_or(-1))
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let tool = rehost_test::require_tool("gzip");
    let mut c = std::process::Command::new(tool)
        .args(["-c", "-n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    c.wait_with_output().unwrap().stdout
}

#[test]
fn record_passes_bytes_through_and_keeps_them_exactly_and_replay_finds_no_difference() {
    use rehost_compat::http::{Limits, read_response};
    use std::io::{BufReader, Write};
    let d = TestDir::new();
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let text = "chunk after chunk\n".repeat(40);
    let gz = gzip(text.as_bytes());
    let big: Vec<u8> = (0..1_600_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (b2, t2, g2, big2) = (binary.clone(), text.clone(), gz.clone(), big.clone());
    let server = Server::start(move |req: &Seen| {
        let mut r = Reply::json("");
        r.headers = vec![("Content-Type".into(), "application/octet-stream".into())];
        match req.target.as_str() {
            "/bin" => r.body = b2.clone(),
            "/chunked" => {
                r.headers = vec![("Content-Type".into(), "text/plain".into())];
                r.body = t2.clone().into_bytes();
                r.chunked = true;
            }
            "/gz" => {
                r.headers.push(("Content-Encoding".into(), "gzip".into()));
                r.body = g2.clone();
                r.chunked = true;
            }
            "/big" => r.body = big2.clone(),
            _ => r = Reply::json(&format!(r#"{{"received":{}}}"#, req.body.len())),
        }
        r
    });
    let rec = Recorder::start(&d, &server, &["--max-record-body", "1"]);

    // One keep-alive client connection: the request bodies are binary, one is sent chunked.
    let conn = std::net::TcpStream::connect(&rec.addr).unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let mut ask = |head: &[u8], body: &[u8], method: &str| {
        w.write_all(head).unwrap();
        w.write_all(body).unwrap();
        read_response(&mut r, method, &Limits::default()).unwrap()
    };
    let host = format!("Host: {}\r\n", rec.addr);
    let get = |p: &str| format!("GET {p} HTTP/1.1\r\n{host}\r\n").into_bytes();
    assert_eq!(ask(&get("/bin"), b"", "GET").body, binary);
    assert_eq!(ask(&get("/chunked"), b"", "GET").body, text.as_bytes());
    let g = ask(&get("/gz"), b"", "GET");
    assert_eq!(
        g.body, gz,
        "the gzip'd body reached the client as the server sent it"
    );
    assert_eq!(ask(&get("/big"), b"", "GET").body, big);
    let mut chunked_body = format!("{:x}\r\n", binary.len()).into_bytes();
    chunked_body.extend(&binary);
    chunked_body.extend(b"\r\n0\r\n\r\n");
    let post = format!("POST /upload HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n");
    assert_eq!(
        ask(post.as_bytes(), &chunked_body, "POST").body,
        br#"{"received":3000}"#
    );
    let put = format!("PUT /upload HTTP/1.1\r\n{host}Content-Length: 256\r\n\r\n");
    ask(put.as_bytes(), &binary[..256], "PUT");
    assert_eq!(
        server.seen()[4].body,
        binary,
        "the chunked upload reached the server whole"
    );

    let (end, code) = rec.stop();
    assert_eq!(code, 0, "{end}");
    assert!(
        end.contains("recorded 6 exchanges on 1 connections"),
        "{end}"
    );
    assert!(end.contains("1 truncated"), "{end}");

    // The file: 0600, and every body byte-identical to what was sent and received.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(d.join("rec.jsonl")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let file = std::fs::File::open(d.join("rec.jsonl")).unwrap();
    let xs: Vec<_> = rehost_compat::traffic::Reader::new(BufReader::new(file))
        .unwrap()
        .map(|(_, x)| x.unwrap())
        .collect();
    let targets: Vec<&str> = xs.iter().map(|x| x.request.target.as_str()).collect();
    assert_eq!(
        targets,
        ["/bin", "/chunked", "/gz", "/big", "/upload", "/upload"]
    );
    assert_eq!(xs[0].response_body().unwrap(), binary);
    assert_eq!(xs[1].response_body().unwrap(), text.as_bytes());
    assert_eq!(xs[2].response_body().unwrap(), gz);
    assert!(xs[3].truncated && !xs[2].truncated);
    assert_eq!(xs[4].request().unwrap().body, binary);
    assert_eq!(xs[5].request().unwrap().body, &binary[..256]);

    // Replayed against the same server: nothing differs, the truncated one is skipped.
    let o = rehost(
        &d,
        &[
            "compat",
            "replay",
            "--traffic",
            "rec.jsonl",
            "--old",
            &server.url(),
            "--new",
            &server.url(),
            "--allow-writes",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("skipped 1 exchanges recorded truncated"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("same: 5 compared requests answered the same"),
        "{}",
        o.stdout
    );
    assert_eq!(
        server.count("POST"),
        3,
        "recorded once, replayed once to each side"
    );

    // An existing file is never overwritten.
    let o = rehost(
        &d,
        &[
            "compat",
            "record",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &format!("127.0.0.1:{}", server.port()),
            "--out",
            "rec.jsonl",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("rec.jsonl: exists; give a new file"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_probe_file_runs_requests_and_a_real_client_command_against_both_sides() {
    rehost_test::require_tool("curl");
    let d = TestDir::new();
    d.write(
        "probe.toml",
        r#"
[[request]]
path = "/api/items?page=1"
headers = { Accept = "application/json" }

[[request]]
method = "POST"
path = "/api/items"
body = "hello"

[[command]]
name = "curl items"
run = "curl -s http://{host}:{port}/api/items"

[[command]]
name = "curl status code"
run = "curl -s -o /dev/null -w '%{http_code}' http://{host}:{port}/api/status"

[[command]]
name = "only old has it"
run = "curl -sf http://{host}:{port}/page > /dev/null"
"#,
    );
    let old = service(10);
    let new = service(11);
    let new_url = new.url();
    let o = rehost(
        &d,
        &[
            "compat",
            "probe",
            "probe.toml",
            "--old",
            &old.url(),
            "--new",
            &new_url,
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let v = json(&o);
    let eps = v["endpoints"].as_array().unwrap();
    let ep = |name: &str| {
        eps.iter()
            .find(|e| e["endpoint"] == name)
            .unwrap_or_else(|| panic!("no endpoint {name}: {v}"))
            .clone()
    };
    assert_eq!(
        ep("GET /api/items")["differences"][0]["field"],
        "$.items[0].price"
    );
    let curl = ep("command curl items");
    assert_eq!(
        curl["differences"][0]["field"], "stdout $.items[0].price",
        "{v}"
    );
    assert_eq!(curl["differences"][0]["examples"][0]["old"], "10");
    assert_eq!(curl["differences"][0]["examples"][0]["new"], "11");
    let noise: Vec<&str> = curl["noise"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(noise.contains(&"stdout $.generated_at"), "{v}");
    assert_eq!(ep("command curl status code")["differing"], 0);
    assert_eq!(ep("command only old has it")["differing"], 0);
    assert_eq!(v["refused_writes"], 1);
    assert_eq!(old.count("POST") + new.count("POST"), 0);
    // curl really ran against each side: the old got its GETs twice, the new once.
    let items = |s: &Server| s.seen().iter().filter(|r| r.target == "/api/items").count();
    assert_eq!((items(&old), items(&new)), (2, 1));

    // A client whose exit status differs: the new side is a port nobody listens on.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    d.write(
        "exit.toml",
        "[[command]]\nname = \"status\"\nrun = \"curl -sf http://{host}:{port}/api/status\"\n",
    );
    let o = rehost(
        &d,
        &[
            "compat",
            "probe",
            "exit.toml",
            "--old",
            &old.url(),
            "--new",
            &format!("http://127.0.0.1:{gone}"),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout.contains("  exit status: differs in 1"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("old exit 0 | new exit 7"), "{}", o.stdout);

    // A probe file with an unknown key is refused, naming it.
    d.write("bad.toml", "[[request]]\npath = \"/\"\nmethd = \"GET\"\n");
    let o = rehost(
        &d,
        &[
            "compat",
            "probe",
            "bad.toml",
            "--old",
            &old.url(),
            "--new",
            &new_url,
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("bad.toml") && o.stderr.contains("methd"),
        "{}",
        o.stderr
    );
}

/// The journal's last `compat` result.
pub(crate) fn journal_compat(d: &TestDir) -> serde_json::Value {
    let journal = d.read(".rehost/plan/test/journal");
    journal
        .lines()
        .rev()
        // Each record is JSON followed by its chain digest.
        .filter_map(|l| l.rfind('}').map(|i| &l[..=i]))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|r| find_kind(&r, "compat"))
        .unwrap_or_else(|| panic!("no compat result in the journal:\n{journal}"))
}

fn find_kind(v: &serde_json::Value, kind: &str) -> Option<serde_json::Value> {
    if v.get("kind").and_then(|k| k.as_str()) == Some(kind) {
        return Some(v.clone());
    }
    match v {
        serde_json::Value::Object(m) => m.values().find_map(|x| find_kind(x, kind)),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_kind(x, kind)),
        _ => None,
    }
}

#[test]
fn a_compat_step_records_its_typed_result_fails_on_a_difference_and_shows_in_the_report() {
    let d = TestDir::new();
    let old = service(10);
    let new = service(11);
    d.write("clients/traffic.jsonl", recorded());
    let step = |allow: &str| {
        format!(
            r#"
[[steps]]
id = "clients"
do = "compat"
traffic = "clients/traffic.jsonl"
old = "{}"
new = "{}"
{allow}
"#,
            old.url(),
            new.url()
        )
    };
    write_plan(&d, &step(""));
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains("2 of 5 requests answered differently")
            && o.all().contains("GET /api/items $.items[0].price"),
        "{}",
        o.all()
    );
    let r = journal_compat(&d);
    assert_eq!(r["v"], 1);
    assert_eq!(r["exit_code"], 1);
    assert_eq!(r["source"], "traffic");
    assert!(
        r["file"]
            .as_str()
            .unwrap()
            .ends_with("clients/traffic.jsonl")
    );
    assert_eq!(
        (r["compared"].as_u64(), r["differing"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(r["refused_writes"], 2);
    let items = r["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "GET /api/items")
        .unwrap();
    assert_eq!(items["differences"][0]["field"], "$.items[0].price");
    assert_eq!(items["differences"][0]["examples"][0]["new"], "11");
    assert_eq!(items["noise"][0]["field"], "$.generated_at");
    // The report shows it: outcome, the field with its example, the noise, what was refused.
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    for part in [
        "ANSWERS DIFFER",
        "GET /api/items $.items[0].price (2×)",
        "`$.generated_at` (2)",
        "2 writes refused (not sent)",
        "| 8 | `DELETE /api/items/1` | a write; the step does not allow writes |",
        "not compared: hop-by-hop headers",
    ] {
        assert!(md.contains(part), "missing {part:?} in the report:\n{md}");
    }

    // The difference declared as expected: the step passes, the field is listed as allowed.
    let d = TestDir::new();
    d.write("clients/traffic.jsonl", recorded());
    write_plan(&d, &step(r#"allow = ["$.items[*].price"]"#));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let r = journal_compat(&d);
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["allowed"], 2);
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains(&format!(
            "the {} requests compared were answered the same",
            r["compared"]
        )),
        "{}\n{md}",
        o.all()
    );
    assert!(md.contains("| allowed |"), "{md}");
}
