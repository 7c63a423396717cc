//! rehost's HTTP write load (issue 24) against two real nginx servers on loopback with the
//! WebDAV module storing each `PUT` as a file of the data the plan copies: every acknowledged
//! write is found on the new side when the load stopped before the final copy, and the ones
//! acknowledged after it are named missing.

use crate::config::{Nginx, nginx};
use crate::support::*;
use rehost_test::TestDir;

/// A port free on both loopback addresses the test's hosts answer at.
fn port_free_on_both() -> u16 {
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let port = l.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// nginx serving `root/www` at `address:port`: `/` answers `up`, `/rehost-writes/ID` stores a
/// `PUT` as a file and serves it back (404 when it has none).
fn webdav(d: &TestDir, name: &str, address: &str, port: u16, root: &str) -> Nginx {
    std::fs::create_dir_all(d.join(root).join("www/rehost-writes")).unwrap();
    let www = d.join(root).join("www");
    let main = "\
user root root;
pid PREFIX/nginx.pid;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path PREFIX/body;
    include PREFIX/conf.d/*.conf;
}
";
    let site = format!(
        "server {{
    listen {address}:{port};
    root {};
    location = / {{ return 200 \"up\"; }}
    location /rehost-writes/ {{ dav_methods PUT; create_full_put_path on; }}
}}
",
        www.display()
    );
    let mut n = nginx(d, name, main, &site);
    n.start_at(address, port, "up");
    n
}

/// A rehearsal that copies `www` from `old` to `new` twice while the HTTP write load runs
/// from before `pre-copy` until after `stop_writes_after`.
fn plan(port: u16, stop_writes_after: &str) -> String {
    let copy = "mkdir -p ../test-new/www && cp -a www/. ../test-new/www/";
    format!(
        r#"
[migration]
title = "Web uploads under load"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"

[hosts.old]
local = true
root = "prod-old"

[hosts.new]
local = true
root = "prod-new"

[environments.test]
old = {{ local = true, root = "test-old", address = "127.0.0.2" }}
new = {{ local = true, root = "test-new", address = "127.0.0.3" }}

[[environments.test.load]]
id = "uploads"
start_before = "pre-copy"
stop_after = "{stop_writes_after}"
writes = "http"
service = "web"

[[services]]
id = "web"
host = "old"
new_host = "new"
ports = [{port}]

[[steps]]
id = "pre-copy"
do = "run"
host = "old"
command = "{copy}"

[[steps]]
id = "under-load"
do = "wait"
duration = "1s"

[[steps]]
id = "stop-app"
do = "run"
host = "old"
command = "true"

[[steps]]
id = "final-copy"
do = "run"
host = "old"
command = "{copy}"

[[steps]]
id = "settle"
do = "wait"
duration = "1s"
"#
    )
}

/// The two servers and the test directory.
fn servers(d: &TestDir) -> (u16, Nginx, Nginx) {
    let port = port_free_on_both();
    let old = webdav(d, "nginx-old", "127.0.0.2", port, "test-old");
    let new = webdav(d, "nginx-new", "127.0.0.3", port, "test-new");
    (port, old, new)
}

/// The write load stopped before the final copy: every acknowledged write is a file on the
/// old side, copied, and answered 200 by the new server; the report says none was lost.
#[test]
fn http_writes_stopped_before_the_final_copy_are_all_found_on_the_new_server() {
    let d = TestDir::new();
    let (port, _old, _new) = servers(&d);
    d.write("plan.toml", plan(port, "stop-app"));
    // The load is valid (the lint's findings about this small plan aside).
    let c = rehost(&d, &["check", "plan.toml"]);
    assert!(!c.all().contains("error["), "{}", c.all());
    // A service without new_host is refused, naming the load.
    d.write(
        "bad.toml",
        plan(port, "stop-app").replace("new_host = \"new\"\n", ""),
    );
    let c = rehost(&d, &["check", "bad.toml"]);
    assert_eq!(c.code, 2, "{}", c.all());
    assert!(
        c.all().contains(
            "load `uploads` of environment `test` writes to service `web`, which has no `new_host`"
        ),
        "{}",
        c.all()
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let rs = journal_records(&d, "test");
    let stopped = &rs[record_pos(&rs, "load_stopped", |r| r["id"] == "uploads")];
    let acked = stopped["acknowledged"].as_u64().unwrap();
    assert!(acked >= 20, "{stopped:#}");
    // Each acknowledged id is a file nginx stored on the old side.
    let file = stopped["acks"]["file"].as_str().unwrap();
    let ids: Vec<String> = d
        .read(&format!(".rehost/plan/test/{file}"))
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len() as u64, acked);
    for id in [&ids[0], &ids[ids.len() - 1]] {
        assert_eq!(
            d.read(&format!("test-old/www/rehost-writes/{id}")),
            format!("rehost write {id}\n")
        );
    }
    let check = &rs[record_pos(&rs, "load_checked", |r| r["id"] == "uploads")];
    assert_eq!(check["service"], "web", "{check:#}");
    assert_eq!(check["acknowledged"].as_u64(), Some(acked), "{check:#}");
    assert_eq!(check["found"].as_u64(), Some(acked), "{check:#}");
    assert_eq!(check["missing_total"], 0, "{check:#}");
    assert!(check.get("error").is_none(), "{check:#}");
    assert_eq!(
        check["new_side"],
        format!("http://127.0.0.3:{port}/rehost-writes"),
        "{check:#}"
    );

    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let md = d.read("out/report.md");
    assert!(
        md.contains(&format!(
            "Write load `uploads`: no acknowledged write lost. {acked} write(s) acknowledged on service `web`'s old side"
        )),
        "{md}"
    );
    assert!(md.contains("the content of each write"), "{md}");
}

/// The write load left running through the final copy: the writes acknowledged after it are
/// not on the new server, named by id, and the verdict fails.
#[test]
fn http_writes_acknowledged_after_the_final_copy_are_named_missing() {
    let d = TestDir::new();
    let (port, _old, _new) = servers(&d);
    d.write("plan.toml", plan(port, "settle"));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let rs = journal_records(&d, "test");
    let check = &rs[record_pos(&rs, "load_checked", |r| r["id"] == "uploads")];
    let acked = check["acknowledged"].as_u64().unwrap();
    let missing = check["missing_total"].as_u64().unwrap();
    assert!(missing > 0, "{check:#}");
    assert_eq!(check["found"].as_u64().unwrap() + missing, acked);
    let first = check["missing"][0].as_u64().unwrap();
    assert!(
        d.join(&format!("test-old/www/rehost-writes/{first}"))
            .exists()
    );
    assert!(
        !d.join(&format!("test-new/www/rehost-writes/{first}"))
            .exists()
    );
    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let md = d.read("out/report.md");
    assert!(
        md.contains(&format!(
            "Write load `uploads`: {missing} of {acked} acknowledged write(s) MISSING"
        )),
        "{md}"
    );
}

/// A new side that answers neither 200 nor 404 (here: nothing listens) is an error naming
/// where it asked; nothing is counted as found.
#[test]
fn a_new_side_that_cannot_be_asked_is_not_counted_as_found() {
    let d = TestDir::new();
    let port = port_free_on_both();
    let _old = webdav(&d, "nginx-old", "127.0.0.2", port, "test-old");
    d.write("plan.toml", plan(port, "stop-app"));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let rs = journal_records(&d, "test");
    let check = &rs[record_pos(&rs, "load_checked", |r| r["id"] == "uploads")];
    assert!(check["acknowledged"].as_u64().unwrap() > 0, "{check:#}");
    assert_eq!(check["found"], 0, "{check:#}");
    let e = check["error"].as_str().unwrap();
    assert!(e.contains(&format!("127.0.0.3:{port}")), "{e}");
    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    let md = d.read("out/report.md");
    assert!(md.contains("could NOT be looked for"), "{}\n{md}", r.all());
    assert!(!md.contains("no acknowledged write lost"), "{md}");
}

/// A new side that answers `500`, or bytes that are not HTTP (with a terminal escape in
/// them), is an error naming the id it asked for; nothing is counted as found, and nothing it
/// sent reaches the terminal or the report unescaped.
#[test]
fn a_new_side_answering_500_or_garbage_is_an_error_never_found() {
    let d = TestDir::new();
    let port = port_free_on_both();
    let _old = webdav(&d, "nginx-old", "127.0.0.2", port, "test-old");
    // 500 to every write lookup.
    let main = "\
user root root;
pid PREFIX/nginx.pid;
worker_processes 1;
events { worker_connections 64; }
http { access_log off; include PREFIX/conf.d/*.conf; }
";
    let site = format!(
        "server {{ listen 127.0.0.3:{port}; location = / {{ return 200 \"up\"; }} location /rehost-writes/ {{ return 500; }} }}\n"
    );
    let mut new = nginx(&d, "nginx-new", main, &site);
    new.start_at("127.0.0.3", port, "up");
    d.write("plan.toml", plan(port, "stop-app"));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let rs = journal_records(&d, "test");
    let check = &rs[record_pos(&rs, "load_checked", |r| r["id"] == "uploads")];
    assert!(check["acknowledged"].as_u64().unwrap() > 0, "{check:#}");
    assert_eq!(check["found"], 0, "{check:#}");
    let e = check["error"].as_str().unwrap();
    assert!(
        e.contains("answered 500: neither 200 (stored) nor 404 (missing)"),
        "{e}"
    );
    drop(new);

    // Bytes that are not HTTP, an escape sequence among them.
    let python = rehost_test::require_tool("python3");
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.3',{port}))\ns.listen(16)\nwhile True:\n  c,_=s.accept()\n  c.recv(65536)\n  c.sendall(b'\\x1b[2J\\x1b]0;owned\\x07garbage\\r\\n\\r\\n')\n  c.close()\n"
    );
    let mut garbage = std::process::Command::new(python)
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.3", port)).is_err() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "garbage server never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::remove_dir_all(d.join(".rehost")).unwrap();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    let _ = garbage.kill();
    let _ = garbage.wait();
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        !o.all().contains('\x1b'),
        "no escape reaches the terminal: {}",
        o.all()
    );
    let rs = journal_records(&d, "test");
    let check = &rs[record_pos(&rs, "load_checked", |r| r["id"] == "uploads")];
    assert_eq!(check["found"], 0, "{check:#}");
    assert!(check["error"].is_string(), "{check:#}");
    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    let md = d.read("out/report.md");
    assert!(md.contains("could NOT be looked for"), "{}\n{md}", r.all());
    assert!(!md.contains('\x1b'), "{md}");
    assert!(!d.read("out/report.html").contains('\x1b'));
}
