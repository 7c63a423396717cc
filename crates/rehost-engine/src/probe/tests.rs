//! The prober's samples against real sockets and processes on this machine, and its parser
//! of status lines against what a hostile server may send.

use super::*;
use std::net::TcpListener;

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

/// A server that answers every connection with `answer`, then closes it.
fn serve(answer: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(answer);
        }
    });
    port
}

#[test]
fn status_lines_are_parsed_strictly() {
    assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
    assert_eq!(status_of(b"HTTP/1.0 503 Busy\r\n"), Some(503));
    for bad in [
        &b""[..],
        b"HTTP/1.1 200 OK",
        b"HTTP/2 200\r\n",
        b"HTTP/1.1 20 OK\r\n",
        b"HTTP/1.1 2000 OK\r\n",
        b"HTTP/1.1 +20 OK\r\n",
        b"\xff\xfe\r\n",
        b"SSH-2.0-OpenSSH\r\n",
    ] {
        assert_eq!(status_of(bad), None, "{bad:?}");
    }
}

#[test]
fn an_http_sample_checks_status_and_body() {
    let stop = Stop::default();
    let ok = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello ok!");
    let check = |port, status, body: Option<&str>| ProbeCheck::Http {
        port,
        path: "/".into(),
        status,
        body: body.map(Into::into),
    };
    assert_eq!(
        sample(&check(ok, 200, None), "127.0.0.1", soon(2000), &stop),
        Ok(())
    );
    assert_eq!(
        sample(&check(ok, 200, Some("ok!")), "127.0.0.1", soon(2000), &stop),
        Ok(())
    );
    let e = sample(
        &check(ok, 200, Some("missing")),
        "127.0.0.1",
        soon(2000),
        &stop,
    )
    .unwrap_err();
    assert!(e.contains("does not hold"), "{e}");
    let e = sample(&check(ok, 204, None), "127.0.0.1", soon(2000), &stop).unwrap_err();
    assert!(e.contains("answered status 200, not 204"), "{e}");
    // A peer that speaks something else: refused in rehost's words, nothing of it quoted.
    let junk = serve(b"\x1b[31mEVIL\x1b[0m\r\n\r\n");
    let e = sample(&check(junk, 200, None), "127.0.0.1", soon(2000), &stop).unwrap_err();
    assert_eq!(e, "the answer is not HTTP/1.x");
}

/// A server that sends without end: the sample reads at most its cap and answers in time.
#[test]
fn an_endless_answer_is_read_up_to_the_cap() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
            let chunk = [b'a'; 4096];
            while c.write_all(&chunk).is_ok() {}
        }
    });
    let check = ProbeCheck::Http {
        port,
        path: "/".into(),
        status: 200,
        body: Some("never there".into()),
    };
    let t0 = Instant::now();
    let e = sample(&check, "127.0.0.1", soon(5000), &Stop::default()).unwrap_err();
    assert!(e.contains("does not hold"), "{e}");
    assert!(
        e.contains(&format!("first {}", HTTP_ANSWER_CAP - 19)),
        "{e}"
    );
    assert!(t0.elapsed() < Duration::from_secs(4));
}

/// A server that accepts and never answers, and a command that sleeps: both abandoned at the
/// timeout and counted unreachable.
#[test]
fn a_hanging_sample_is_abandoned_at_its_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let held: Vec<_> = l.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    let check = ProbeCheck::Http {
        port,
        path: "/".into(),
        status: 200,
        body: None,
    };
    let t0 = Instant::now();
    let e = sample(&check, "127.0.0.1", soon(300), &Stop::default()).unwrap_err();
    assert!(e.contains("timeout"), "{e}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let cmd = ProbeCheck::Command {
        command: format!("sleep 100 & echo $! > {}; wait", pidfile.display()),
    };
    let t0 = Instant::now();
    let e = sample(&cmd, "127.0.0.1", soon(300), &Stop::default()).unwrap_err();
    assert!(e.contains("did not finish"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    // The shell and its sleep are gone: the group was killed.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: signal 0 only asks whether the group exists.
    assert_eq!(
        unsafe { libc::kill(-pid, 0) },
        -1,
        "the probe's group survives"
    );
}

#[test]
fn a_command_sample_gets_the_side_address() {
    let ok = ProbeCheck::Command {
        command: "test {host} = 127.0.0.9 && test \"$REHOST_PROBE_HOST\" = 127.0.0.9".into(),
    };
    assert_eq!(
        sample(&ok, "127.0.0.9", soon(2000), &Stop::default()),
        Ok(())
    );
    let e = sample(&ok, "127.0.0.8", soon(2000), &Stop::default()).unwrap_err();
    assert_eq!(e, "the command exited 1");
}

#[test]
fn a_tcp_sample_connects_or_says_why_not() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let check = ProbeCheck::Tcp { port };
    assert_eq!(
        sample(&check, "127.0.0.1", soon(1000), &Stop::default()),
        Ok(())
    );
    drop(l);
    let e = sample(&check, "127.0.0.1", soon(1000), &Stop::default()).unwrap_err();
    assert!(e.contains("connect to 127.0.0.1"), "{e}");
}
