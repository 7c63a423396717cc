//! The relay: the accept loop, the relayed connections (copied by the workers, `worker.rs`),
//! and the switch itself.

use crate::worker::{New, Worker};
use crate::{Ended, HoldError, Left, MAX_NAMED, SwitchReport};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many worker threads relay at most (one per CPU up to this).
const MAX_WORKERS: usize = 4;

/// How many relayed connections a hold keeps open at most; past it, accept waits (clients wait
/// in the backlog) until one ends, so that a flood of clients cannot exhaust threads.
pub const MAX_CONNECTIONS: usize = 10_000;

/// How long connecting to the upstream may take for one client.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A relayed connection: its sockets (shared with the worker relaying it), kept to shut them
/// down at a drain deadline.
struct Conn {
    client: SocketAddr,
    upstream: SocketAddr,
    started: Instant,
    client_sock: Arc<TcpStream>,
    upstream_sock: Arc<TcpStream>,
}

struct State {
    upstream: SocketAddr,
    /// A switch asked accept to pause.
    paused: bool,
    /// The accept loop is parked: it calls `accept()` no more until `paused` is cleared.
    parked: bool,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    state_cond: Condvar,
    conns: Mutex<HashMap<u64, Conn>>,
    /// Notified when a connection ends.
    conns_cond: Condvar,
    /// While a switch drains: each connection that ended, and when (locked after `conns`).
    departures: Mutex<Option<Vec<(u64, Instant)>>>,
    next_id: AtomicU64,
    /// Written to wake the accept loop out of `poll`.
    wake: UnixStream,
    max_connections: usize,
    pub(crate) log: Log,
}

impl Shared {
    /// A connection has ended: no longer counted, its sockets closed once its worker has let
    /// them go.
    pub(crate) fn forget(&self, id: u64) {
        let mut conns = lock(&self.conns);
        conns.remove(&id);
        if let Some(d) = lock(&self.departures).as_mut() {
            d.push((id, Instant::now()));
        }
        drop(conns);
        self.conns_cond.notify_all();
    }
}

/// Where a hold's log lines go (the binary writes them to stderr; the library never prints).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A relay thread that panicked leaves data that is still consistent (plain fields).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running hold: its listening socket and shared state. [`Hold::run`] accepts until the
/// process ends; [`Hold::switch`] is called by the control socket's thread.
#[derive(Clone)]
pub struct Hold {
    shared: Arc<Shared>,
    listener: Arc<TcpListener>,
    wake_rx: Arc<UnixStream>,
    workers: Arc<Vec<Arc<Worker>>>,
}

impl Hold {
    pub fn new(
        listener: TcpListener,
        upstream: SocketAddr,
        max_connections: usize,
        log: Log,
    ) -> Result<Hold, HoldError> {
        Hold::with_workers(listener, upstream, max_connections, log, 0)
    }

    /// [`Hold::new`] with `workers` relay threads (0: one per CPU, at most four; more than
    /// four are four).
    pub fn with_workers(
        listener: TcpListener,
        upstream: SocketAddr,
        max_connections: usize,
        log: Log,
        workers: usize,
    ) -> Result<Hold, HoldError> {
        listener
            .set_nonblocking(true)
            .map_err(HoldError::io("the listening socket"))?;
        let (wake, wake_rx) = UnixStream::pair().map_err(HoldError::io("a wake-up pair"))?;
        wake.set_nonblocking(true)
            .map_err(HoldError::io("a wake-up pair"))?;
        wake_rx
            .set_nonblocking(true)
            .map_err(HoldError::io("a wake-up pair"))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                upstream,
                paused: false,
                parked: false,
            }),
            state_cond: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
            conns_cond: Condvar::new(),
            departures: Mutex::new(None),
            next_id: AtomicU64::new(0),
            wake,
            max_connections: max_connections.max(1),
            log,
        });
        let n = match workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
        .clamp(1, MAX_WORKERS);
        let workers = (0..n)
            .map(|i| Worker::start(Arc::clone(&shared), i))
            .collect::<io::Result<Vec<_>>>()
            .map_err(HoldError::io("a relay worker (epoll)"))?;
        Ok(Hold {
            shared,
            listener: Arc::new(listener),
            wake_rx: Arc::new(wake_rx),
            workers: Arc::new(workers),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The upstream new connections go to.
    pub fn upstream(&self) -> SocketAddr {
        lock(&self.shared.state).upstream
    }

    /// Writes a line to the hold's log.
    pub fn log(&self, line: &str) {
        (self.shared.log)(line)
    }

    /// How many relayed connections are open.
    pub fn open(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Accepts and relays until the process ends (or accepting fails for good).
    pub fn run(&self) -> Result<(), HoldError> {
        let sh = &self.shared;
        loop {
            {
                let mut st = lock(&sh.state);
                while st.paused {
                    if !st.parked {
                        st.parked = true;
                        sh.state_cond.notify_all();
                    }
                    st = sh.state_cond.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.parked = false;
            }
            {
                // At the bound, clients wait in the backlog until a connection ends.
                let mut conns = lock(&sh.conns);
                while conns.len() >= sh.max_connections && !lock(&sh.state).paused {
                    conns = sh
                        .conns_cond
                        .wait_timeout(conns, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            if lock(&sh.state).paused {
                continue;
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake_rx.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(HoldError::io("poll on the listening socket")(e));
            }
            if fds[1].revents != 0 {
                let mut buf = [0u8; 64];
                while matches!((&*self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
            }
            if fds[0].revents == 0 {
                continue;
            }
            match self.listener.accept() {
                Ok((sock, client)) => self.relay(sock, client),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) if is_transient(&e) => {
                    (sh.log)(&format!("accept failed ({e}); retrying in 100 ms"));
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(HoldError::io("accept on the listening socket")(e)),
            }
        }
    }

    /// Registers the accepted connection with the current upstream, begins the upstream
    /// connection and hands both to a worker.
    fn relay(&self, sock: TcpStream, client: SocketAddr) {
        let sh = &self.shared;
        let upstream = lock(&sh.state).upstream;
        if sock.set_nonblocking(true).is_err() {
            return;
        }
        let _ = sock.set_nodelay(true);
        let (up, connecting) = match connect(upstream) {
            Ok(c) => c,
            Err(e) => {
                (sh.log)(&format!(
                    "the upstream {upstream} did not accept a connection ({e}): closed the client"
                ));
                return;
            }
        };
        let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
        let (client_sock, up) = (Arc::new(sock), Arc::new(up));
        lock(&sh.conns).insert(
            id,
            Conn {
                client,
                upstream,
                started: Instant::now(),
                client_sock: Arc::clone(&client_sock),
                upstream_sock: Arc::clone(&up),
            },
        );
        self.workers[(id % self.workers.len() as u64) as usize].hand(New {
            id,
            client: client_sock,
            up,
            upstream,
            connecting,
        });
    }

    /// Moves the hold to `to` (see the crate's documentation), within `timeout`.
    pub fn switch(&self, to: SocketAddr, timeout: Duration) -> SwitchReport {
        let sh = &self.shared;
        let from = self.upstream();
        let mut report = SwitchReport {
            from: from.to_string(),
            to: to.to_string(),
            now: from.to_string(),
            switched: false,
            paused: false,
            paused_ms: 0,
            queued: 0,
            open_at_pause: 0,
            drained: 0,
            left: Vec::new(),
            ended: Vec::new(),
            ended_count: 0,
            drain_deadline_ms: 0,
            failure: None,
        };
        if from == to {
            report.switched = true;
            return report;
        }
        let probe = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_millis(500));
        if let Err(e) = TcpStream::connect_timeout(&to, probe) {
            report.failure = Some(format!(
                "the new upstream {to} did not accept a connection ({e}); nothing was paused: the hold still forwards to {from}"
            ));
            return report;
        }
        // Pause: the accept loop parks; clients wait in the kernel's backlog.
        {
            let mut st = lock(&sh.state);
            st.paused = true;
            let _ = (&sh.wake).write(&[1]);
            let asked = Instant::now();
            while !st.parked {
                if asked.elapsed() > timeout {
                    // The accept loop is gone or stuck: switch nothing, say so.
                    st.paused = false;
                    sh.state_cond.notify_all();
                    report.failure = Some(format!(
                        "the hold's accept loop did not pause within {} ms; nothing was switched: the hold still forwards to {from}",
                        timeout.as_millis()
                    ));
                    return report;
                }
                st = sh
                    .state_cond
                    .wait_timeout(st, Duration::from_millis(10))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                let _ = (&sh.wake).write(&[1]);
            }
        }
        sh.conns_cond.notify_all();
        let paused_at = Instant::now();
        let drain_deadline = timeout * 3 / 4;
        report.drain_deadline_ms = drain_deadline.as_millis() as u64;
        // Drain: wait for the connections to anything but the new upstream to end, noting
        // which ended when (`forget` records each under the same lock, from the snapshot on).
        let old_at_pause: HashMap<u64, (SocketAddr, SocketAddr)> = {
            let conns = lock(&sh.conns);
            *lock(&sh.departures) = Some(Vec::new());
            conns
                .iter()
                .filter(|(_, c)| c.upstream != to)
                .map(|(id, c)| (*id, (c.client, c.upstream)))
                .collect()
        };
        report.open_at_pause = old_at_pause.len() as u32;
        // Outside the lock: the log may be slow, the workers must not wait for it.
        (sh.log)(&format!(
            "switching from {from} to {to}: accept paused; {} connection(s) to the old upstream open, ended at the drain deadline in {} ms unless they end by themselves",
            report.open_at_pause, report.drain_deadline_ms
        ));
        {
            let mut conns = lock(&sh.conns);
            loop {
                if !conns.values().any(|c| c.upstream != to) {
                    break;
                }
                let left = drain_deadline.saturating_sub(paused_at.elapsed());
                if left.is_zero() {
                    break;
                }
                conns = sh
                    .conns_cond
                    .wait_timeout(conns, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            // End the ones still open: both sockets, both directions; their threads see the
            // end of their streams and deregister.
            for c in conns.values_mut().filter(|c| c.upstream != to) {
                let _ = c.client_sock.shutdown(Shutdown::Both);
                let _ = c.upstream_sock.shutdown(Shutdown::Both);
                report.ended_count += 1;
                if report.ended.len() < MAX_NAMED {
                    report.ended.push(Ended {
                        client: c.client.to_string(),
                        upstream: c.upstream.to_string(),
                        age_ms: c.started.elapsed().as_millis() as u64,
                    });
                }
            }
            report.drained = report.open_at_pause.saturating_sub(report.ended_count);
            let departures = lock(&sh.departures).take().unwrap_or_default();
            report.left = departures
                .iter()
                .filter_map(|(id, at)| {
                    let (client, upstream) = old_at_pause.get(id)?;
                    Some(Left {
                        client: client.to_string(),
                        upstream: upstream.to_string(),
                        after_ms: at.saturating_duration_since(paused_at).as_millis() as u64,
                    })
                })
                .take(MAX_NAMED)
                .collect();
        }
        // Re-point: towards the new side if it is up, else stay with the old one.
        let left = timeout.saturating_sub(paused_at.elapsed());
        let probe = left.clamp(Duration::from_millis(20), Duration::from_millis(500));
        let target = match TcpStream::connect_timeout(&to, probe) {
            Ok(_) => to,
            Err(e) => {
                let old_up = TcpStream::connect_timeout(&from, Duration::from_millis(100)).is_ok();
                report.failure = Some(if old_up {
                    format!(
                        "the new upstream {to} stopped accepting connections during the switch ({e}); resumed towards the old upstream {from}, which accepts"
                    )
                } else {
                    format!(
                        "neither upstream accepts connections: the new {to} ({e}) nor the old {from}; resumed towards the old one: clients will be closed until one is up"
                    )
                });
                from
            }
        };
        report.queued = backlog(self.listener.as_raw_fd()).unwrap_or(0);
        {
            let mut st = lock(&sh.state);
            st.upstream = target;
            st.paused = false;
            report.paused = true;
            report.paused_ms = paused_at.elapsed().as_millis() as u64;
            sh.state_cond.notify_all();
        }
        report.now = target.to_string();
        report.switched = target == to;
        if report.failure.is_none() && paused_at.elapsed() > timeout {
            report.failure = Some(format!(
                "the switch took {} ms, longer than its time box of {} ms",
                report.paused_ms,
                timeout.as_millis()
            ));
        }
        report
    }
}

/// The connections of the listening socket waiting to be accepted (TCP_INFO's `tcpi_unacked`
/// holds the accept queue's length for a listening socket, as `ss` shows it in Recv-Q).
fn backlog(fd: RawFd) -> Option<u32> {
    // SAFETY: `info` is a valid out-buffer of `len` bytes; getsockopt fills at most that.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info.tcpi_unacked)
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A non-blocking connection to `to`, begun: made already (`None`), or still being made, given
/// up on after [`CONNECT_TIMEOUT`] (the instant).
fn connect(to: SocketAddr) -> io::Result<(TcpStream, Option<Instant>)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if to.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    let connecting = match rustix::net::connect(&fd, &to) {
        Ok(()) => None,
        Err(rustix::io::Errno::INPROGRESS) => Some(Instant::now() + CONNECT_TIMEOUT),
        Err(e) => return Err(e.into()),
    };
    let s = TcpStream::from(fd);
    let _ = s.set_nodelay(true);
    Ok((s, connecting))
}

/// Listens on `addr` with the largest backlog the kernel allows (`SOMAXCONN`, capped by
/// `net.core.somaxconn`): during a switch, clients wait there.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    // SAFETY: a valid listening descriptor; listen again only raises its backlog.
    if unsafe { libc::listen(l.as_raw_fd(), libc::SOMAXCONN) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(l)
}

/// The listening socket systemd passed (socket activation: `LISTEN_PID` is this process and
/// `LISTEN_FDS` at least 1; the first, descriptor 3), or `None` when none was passed. The
/// variables are removed so that nothing this process starts takes them for its own.
pub fn activated_listener() -> Result<Option<TcpListener>, HoldError> {
    let (Ok(pid), Ok(fds)) = (std::env::var("LISTEN_PID"), std::env::var("LISTEN_FDS")) else {
        return Ok(None);
    };
    if pid.trim() != std::process::id().to_string() {
        return Ok(None);
    }
    // SAFETY: removing variables at start, before this process starts threads of its own.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let n: u32 = fds.trim().parse().map_err(|_| {
        HoldError::Activation(format!(
            "LISTEN_FDS is `{}`, not a number",
            rehost_tree::escape::text(&fds)
        ))
    })?;
    if n == 0 {
        return Ok(None);
    }
    if n > 1 {
        return Err(HoldError::Activation(format!(
            "systemd passed {n} sockets; a hold relays one: give its socket unit one ListenStream="
        )));
    }
    const FD: RawFd = 3;
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: out-pointers valid for the call; FD may be anything, getsockopt checks it.
    let rc = unsafe {
        libc::getsockopt(
            FD,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || accepting == 0 {
        return Err(HoldError::Activation(
            "descriptor 3 from systemd is not a listening socket: use ListenStream= (not Accept=yes) in the socket unit".into(),
        ));
    }
    // SAFETY: systemd passed descriptor 3 to this process for it to own; checked listening.
    let l = unsafe { TcpListener::from_raw_fd(FD) };
    // SAFETY: a valid descriptor; not inherited by what the hold starts.
    unsafe { libc::fcntl(FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    if l.local_addr().is_err() {
        return Err(HoldError::Activation(
            "descriptor 3 from systemd is not a TCP socket".into(),
        ));
    }
    Ok(Some(l))
}
