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
    ip: Ipv4Addr,
    port: u16,
    zone: String,
    /// The zone's NS names (relative to the zone) and their addresses, as the zone file
    /// writes them.
    ns: Vec<(String, Ipv4Addr)>,
    child: Option<Child>,
}

/// Where a [`Knot`] listens and which name servers its zone names.
pub struct Listen {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ns: Vec<(String, Ipv4Addr)>,
}

/// A free block of loopback addresses `127.53.X.1`, `127.53.X.2`, … whose port 53 is free
/// (for name servers that must be found at the DNS port, as NS records give no port): a
/// random X, tried until `count` addresses bind. Binding port 53 needs root (CI runs as root).
pub fn free_port_53_addrs(count: u8) -> Vec<Ipv4Addr> {
    for _ in 0..200 {
        let x = rand_byte();
        let addrs: Vec<Ipv4Addr> = (1..=count).map(|i| Ipv4Addr::new(127, 53, x, i)).collect();
        if addrs
            .iter()
            .all(|a| UdpSocket::bind((*a, 53)).is_ok() && TcpListener::bind((*a, 53)).is_ok())
        {
            return addrs;
        }
    }
    panic!("no free block of 127.53.X.Y addresses with port 53 free (binding port 53 needs root)")
}

fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    getrandom_fill(&mut b);
    b[0]
}

fn getrandom_fill(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("read /dev/urandom");
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

    /// As [`Knot::start`], listening at `listen.ip`:`listen.port`, its zone naming
    /// `listen.ns` as its name servers (with their addresses as glue).
    pub fn start_at(
        listen: Listen,
        zone: &str,
        negative_ttl: u32,
        records: &str,
        key: Option<(&str, &str)>,
    ) -> Knot {
        Knot::start_on(listen, zone, negative_ttl, records, key)
    }

    fn start_with(zone: &str, negative_ttl: u32, records: &str, key: Option<(&str, &str)>) -> Knot {
        let listen = Listen {
            ip: Ipv4Addr::LOCALHOST,
            port: free_port(),
            ns: vec![("ns1".into(), Ipv4Addr::LOCALHOST)],
        };
        Knot::start_on(listen, zone, negative_ttl, records, key)
    }

    fn start_on(
        listen: Listen,
        zone: &str,
        negative_ttl: u32,
        records: &str,
        key: Option<(&str, &str)>,
    ) -> Knot {
        let knotd = crate::require_tool("knotd");
        let dir = tempfile::Builder::new()
            .prefix("rehost-knot-")
            .tempdir()
            .expect("create a temporary directory");
        let port = listen.port;
        let ip = listen.ip;
        let mut k = Knot {
            dir,
            ip,
            port,
            zone: zone.to_string(),
            ns: listen.ns,
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
            "server:\n    listen: {ip}@{port}\n    rundir: {run}\n\
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

    /// `IP:PORT`, as rehost's `--authoritative` takes it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("knot.conf")
    }

    fn set_zone(&self, serial: u32, negative_ttl: u32, records: &str) {
        let z = &self.zone;
        let primary = &self.ns[0].0;
        let ns: String = self
            .ns
            .iter()
            .map(|(n, a)| format!("@ 3600 IN NS {n}.{z}.\n{n} 3600 IN A {a}\n"))
            .collect();
        let text = format!(
            "$ORIGIN {z}.\n$TTL 3600\n\
             @ 3600 IN SOA {primary}.{z}. hostmaster.{z}. {serial} 3600 600 86400 {negative_ttl}\n\
             {ns}{records}\n"
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
        let at = format!("@{}", self.ip);
        let out = Command::new(crate::require_tool("dig"))
            .args([
                &at,
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
        let at = format!("@{}", self.ip);
        let out = Command::new(crate::require_tool("dig"))
            .args([
                &at,
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
