//! A real authoritative DNS server (Knot) on a free loopback port, for tests: `knotd` in the
//! foreground with a configuration and a zone file in a temporary directory, ready when
//! `knotc status` answers and the zone is served, changed by rewriting the zone file and
//! `knotc zone-reload`, stopped by PID when dropped. A missing package fails the test with the
//! install step. Several instances on different ports stand in for several name servers.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Knot {
    dir: tempfile::TempDir,
    port: u16,
    zone: String,
    child: Option<Child>,
}

impl Knot {
    /// Serves `zone` (e.g. `example.test`) from `records`, the zone file's body after the SOA
    /// and NS that this writes (serial 1, negative TTL `negative_ttl`).
    pub fn start(zone: &str, negative_ttl: u32, records: &str) -> Knot {
        Knot::start_with(zone, negative_ttl, records, None)
    }

    /// As [`Knot::start`], and accepting DNS UPDATEs to the zone signed with the TSIG key
    /// `(name, base64 secret)` (hmac-sha256), and from nothing else.
    pub fn start_updatable(
        zone: &str,
        negative_ttl: u32,
        records: &str,
        key: (&str, &str),
    ) -> Knot {
        Knot::start_with(zone, negative_ttl, records, Some(key))
    }

    fn start_with(zone: &str, negative_ttl: u32, records: &str, key: Option<(&str, &str)>) -> Knot {
        let knotd = crate::require_tool("knotd");
        let dir = tempfile::Builder::new()
            .prefix("rehost-knot-")
            .tempdir()
            .expect("create a temporary directory");
        let port = free_port();
        let mut k = Knot {
            dir,
            port,
            zone: zone.to_string(),
            child: None,
        };
        std::fs::create_dir(k.dir.path().join("run")).expect("rundir");
        std::fs::create_dir(k.dir.path().join("db")).expect("database dir");
        let (keys, acl) = match key {
            Some((name, secret)) => (
                format!(
                    "key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n\
                     acl:\n  - id: rehost-update\n    key: {name}\n    action: update\n"
                ),
                "    acl: rehost-update\n".to_string(),
            ),
            None => (String::new(), String::new()),
        };
        let conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {run}\n\
             database:\n    storage: {db}\n\
             log:\n  - target: stderr\n    any: info\n\
             {keys}\
             zone:\n  - domain: {zone}\n    storage: {dir}\n    file: {zone}.zone\n    \
             zonefile-sync: -1\n    journal-content: none\n{acl}",
            run = k.dir.path().join("run").display(),
            db = k.dir.path().join("db").display(),
            dir = k.dir.path().display(),
        );
        std::fs::write(k.conf(), conf).expect("write knot.conf");
        k.set_zone(1, negative_ttl, records);
        let log = std::fs::File::create(k.dir.path().join("knotd.log")).expect("log file");
        let child = Command::new(knotd)
            .arg("-c")
            .arg(k.conf())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start knotd");
        k.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !k.serves_soa() {
            assert!(
                Instant::now() < deadline,
                "knotd did not serve {zone} in 20 s: {}",
                std::fs::read_to_string(k.dir.path().join("knotd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        k
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as rehost's `--authoritative` takes it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("knot.conf")
    }

    fn set_zone(&self, serial: u32, negative_ttl: u32, records: &str) {
        let z = &self.zone;
        let text = format!(
            "$ORIGIN {z}.\n$TTL 3600\n\
             @ 3600 IN SOA ns1.{z}. hostmaster.{z}. {serial} 3600 600 86400 {negative_ttl}\n\
             @ 3600 IN NS ns1.{z}.\nns1 3600 IN A 127.0.0.1\n{records}\n"
        );
        std::fs::write(self.dir.path().join(format!("{z}.zone")), text).expect("write the zone");
    }

    /// Rewrites the zone with `records` and serial `serial` (higher than before), and has knot
    /// reload it; returns once knot serves the new serial.
    pub fn reload(&self, serial: u32, negative_ttl: u32, records: &str) {
        self.set_zone(serial, negative_ttl, records);
        let out = Command::new(crate::require_tool("knotc"))
            .arg("-c")
            .arg(self.conf())
            .args(["-b", "zone-reload", &self.zone])
            .output()
            .expect("run knotc");
        assert!(
            out.status.success(),
            "knotc zone-reload failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.soa_serial() != Some(serial) {
            assert!(
                Instant::now() < deadline,
                "knot did not serve serial {serial} in 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn serves_soa(&self) -> bool {
        self.soa_serial().is_some()
    }

    /// The zone's serial as knot serves it now, by a raw SOA query (the test support does not
    /// depend on rehost's DNS code, which it tests).
    fn soa_serial(&self) -> Option<u32> {
        let out = Command::new(crate::require_tool("dig"))
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+norec",
                "+short",
                "+time=1",
                "+tries=1",
                &self.zone,
                "SOA",
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace().nth(2)?.parse().ok()
    }

    /// `dig`'s view of `name`'s `rtype` records: (TTL, value) per record, in its order.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<(u32, String)> {
        let out = Command::new(crate::require_tool("dig"))
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+norec",
                "+noall",
                "+answer",
                name,
                rtype,
            ])
            .output()
            .expect("run dig");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 5 && f[3] == rtype).then(|| (f[1].parse().unwrap(), f[4].to_string()))
            })
            .collect()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::stop_child(child, libc::SIGTERM, Duration::from_secs(10));
        }
    }
}

/// A loopback port free for both TCP and UDP now.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

/// A loopback UDP and TCP port that nothing listens on (a server that does not answer).
pub fn silent_port() -> u16 {
    free_port()
}
