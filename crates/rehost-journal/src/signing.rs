//! The journal's head, signed with a key the operator holds and the state directory does not.
//!
//! The hash chain ([`crate::journal`]) proves consistency, not authenticity: the records and the
//! files they name agree with each other, but whoever can write the state directory can rewrite
//! a record and recompute the chain after it. A signature over the head, made with a key kept
//! outside the state directory, closes that: rewriting the journal then needs the key too.
//!
//! Three files beside the journal (docs/journal.md):
//!
//! - `journal.head`, the signed text ([`message`]): the head digest and how many records it
//!   stands for;
//! - `journal.head.sig`, its SSH signature (`ssh-keygen -Y sign -n rehost`), exactly as
//!   ssh-keygen writes it, so `ssh-keygen -Y verify … -s journal.head.sig < journal.head` checks
//!   it without rehost;
//! - `journal.head.mac`, its BLAKE3 keyed hash with a key read from a file outside the state
//!   directory ([`HmacKey`]).
//!
//! BLAKE3's keyed mode rather than HMAC-SHA256: it is a MAC by design (a keyed PRF without
//! length extension, so no HMAC nesting is needed), it is the hash the chain already uses (no new
//! dependency), and `b3sum --keyed` recomputes it without rehost.
//!
//! ssh-keygen is run as a program, as OpenSSH is everywhere else in rehost: the key may be a
//! private key file or a public key whose private half is in ssh-agent. No key byte is read,
//! printed or written by rehost; an HMAC key is read into memory only, and only a derived key id
//! is ever shown.

use crate::RunLock;
use crate::journal::Journal;
use rehost_tree::private::PrivateDir;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The signed text, beside the journal.
pub const HEAD_FILE: &str = "journal.head";
/// The SSH signature of [`HEAD_FILE`], as ssh-keygen names and writes it.
pub const SSH_SIG_FILE: &str = "journal.head.sig";
/// The BLAKE3 keyed hash of [`HEAD_FILE`].
pub const MAC_FILE: &str = "journal.head.mac";
/// The ssh-keygen signature namespace: a signature made for rehost is not one for git or email.
pub const NAMESPACE: &str = "rehost";
/// The BLAKE3 `derive_key` context that turns an HMAC key file's bytes into the MAC key.
pub const MAC_CONTEXT: &str = "rehost 2026-12 journal head mac";
const KEY_ID_CONTEXT: &str = "rehost 2026-12 journal head mac key id";
/// The fewest bytes an HMAC key file may hold.
pub const MIN_KEY_BYTES: usize = 32;

/// The text that is signed: what the head stands for, one fact a line.
pub fn message(head: &str, records: usize) -> String {
    format!("rehost journal head v1\nhead {head}\nrecords {records}\n")
}

/// Reads [`message`] back: the head digest and the record count.
pub fn parse_message(text: &str) -> Option<(String, usize)> {
    let mut lines = text.strip_suffix('\n')?.split('\n');
    if lines.next()? != "rehost journal head v1" {
        return None;
    }
    let head = lines.next()?.strip_prefix("head ")?;
    let records = lines.next()?.strip_prefix("records ")?.parse().ok()?;
    if lines.next().is_some()
        || head.len() != 64
        || !head
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    Some((head.to_owned(), records))
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(
        "failed to use the {what} {}: it is inside the state directory {} it is to vouch for (whoever can write there could replace it); keep it where only the operator can write, e.g. ~/.config/rehost/",
        path.display(), state.display()
    )]
    KeyInState {
        what: &'static str,
        path: PathBuf,
        state: PathBuf,
    },
    #[error("failed to read the {what} {}: {source}", path.display())]
    KeyRead {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "failed to use the HMAC key {}: it holds {len} bytes, fewer than {MIN_KEY_BYTES}; make one with `head -c 32 /dev/urandom > FILE; chmod 600 FILE`",
        path.display()
    )]
    KeyShort { path: PathBuf, len: usize },
    #[error(
        "failed to use the HMAC key {}: group or others may read or write it (mode {mode:03o}); `chmod 600 {}`",
        path.display(), path.display()
    )]
    KeyMode { path: PathBuf, mode: u32 },
    #[error(
        "failed to run ssh-keygen: {0}; install the OpenSSH client (`apt-get install openssh-client`)"
    )]
    NoSshKeygen(std::io::Error),
    #[error("failed to sign the journal's head with {}: ssh-keygen: {message}", key.display())]
    SshSign { key: PathBuf, message: String },
    #[error("failed to sign the journal's head in {}: there is no journal with chained records", state.display())]
    NoJournal { state: PathBuf },
    #[error("failed to sign the journal's head: {0}")]
    State(String),
}

/// An HMAC key, read from a file outside the state directory. Its bytes are never formatted:
/// `Debug` shows the file and the key id only.
pub struct HmacKey {
    path: PathBuf,
    key: [u8; 32],
    id: String,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "HmacKey({}, key id {})", self.path.display(), self.id)
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        for b in self.key.iter_mut() {
            // SAFETY: a valid, aligned byte of our own array; volatile so the wipe stays.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl HmacKey {
    /// Reads the key file `path`, refusing one inside `state_base` (the directory that holds
    /// the state directories of every environment), one that group or others may read or
    /// write, and one shorter than [`MIN_KEY_BYTES`]. The file's bytes are the key material:
    /// the MAC key is BLAKE3 `derive_key` of them with [`MAC_CONTEXT`].
    pub fn load(path: &Path, state_base: &Path) -> Result<HmacKey, SignError> {
        refuse_inside("HMAC key", path, state_base)?;
        let read = |source| SignError::KeyRead {
            what: "HMAC key",
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SignError::KeyMode {
                path: path.to_owned(),
                mode,
            });
        }
        let mut bytes = std::fs::read(path).map_err(read)?;
        let len = bytes.len();
        let key = blake3::derive_key(MAC_CONTEXT, &bytes);
        let id = blake3::derive_key(KEY_ID_CONTEXT, &bytes);
        for b in bytes.iter_mut() {
            // SAFETY: a valid byte of our own buffer; volatile so the wipe stays.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
        if len < MIN_KEY_BYTES {
            return Err(SignError::KeyShort {
                path: path.to_owned(),
                len,
            });
        }
        Ok(HmacKey {
            path: path.to_owned(),
            key,
            id: blake3::Hash::from(id).to_hex()[..16].to_owned(),
        })
    }

    /// A short id of the key (derived one way from it, not the key): which key made a MAC.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn mac(&self, message: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.key, message)
    }

    /// The text of [`MAC_FILE`] for `message`.
    fn mac_file(&self, message: &str) -> String {
        format!(
            "rehost journal head mac v1\nkey {}\nmac {}\n",
            self.id,
            self.mac(message.as_bytes()).to_hex()
        )
    }
}

/// Parses [`MAC_FILE`]: the key id and the MAC.
fn parse_mac_file(text: &str) -> Option<(String, blake3::Hash)> {
    let mut lines = text.strip_suffix('\n')?.split('\n');
    if lines.next()? != "rehost journal head mac v1" {
        return None;
    }
    let id = lines.next()?.strip_prefix("key ")?.to_owned();
    let mac = blake3::Hash::from_hex(lines.next()?.strip_prefix("mac ")?).ok()?;
    lines.next().is_none().then_some((id, mac))
}

/// Refuses a key file inside `state_base`: a key the state directory holds proves nothing
/// about the state directory.
pub fn refuse_inside(what: &'static str, key: &Path, state_base: &Path) -> Result<(), SignError> {
    let key_real = std::fs::canonicalize(key).map_err(|source| SignError::KeyRead {
        what,
        path: key.to_owned(),
        source,
    })?;
    if key_real.starts_with(canonical_prefix(state_base)) {
        return Err(SignError::KeyInState {
            what,
            path: key.to_owned(),
            state: state_base.to_owned(),
        });
    }
    Ok(())
}

/// `path` canonicalized as far as it exists, with the rest appended (a state directory a first
/// run has not created yet).
fn canonical_prefix(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p: PathBuf, r| p.join(r));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// The keys a head is signed with.
#[derive(Debug, Default)]
pub struct Keys {
    /// A private key file, or a public key whose private half is in ssh-agent.
    pub ssh: Option<PathBuf>,
    pub hmac: Option<HmacKey>,
}

impl Keys {
    pub fn is_empty(&self) -> bool {
        self.ssh.is_none() && self.hmac.is_none()
    }

    /// Checks before a run that the keys can be used: each outside `state_base`; an SSH key
    /// file present. (Whether ssh-keygen accepts it shows when it signs.)
    pub fn check(&self, state_base: &Path) -> Result<(), SignError> {
        if let Some(k) = &self.ssh {
            refuse_inside("signing key", k, state_base)?;
        }
        if let Some(k) = &self.hmac {
            refuse_inside("HMAC key", &k.path, state_base)?;
        }
        Ok(())
    }
}

/// What [`sign`] signed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Signed {
    pub head: String,
    pub records: usize,
    /// The SSH key, as ssh-keygen names it (`ED25519 key SHA256:…`).
    pub ssh_key: Option<String>,
    /// The HMAC key's id.
    pub hmac_key: Option<String>,
}

/// The journal's head and how many records it stands for (`None` without chained records).
pub fn head_of(state: &PrivateDir) -> Result<Option<(String, usize)>, SignError> {
    let loaded = Journal::read(state).map_err(|e| SignError::State(e.to_string()))?;
    Ok(loaded.head.map(|h| (h, loaded.records.len())))
}

/// Signs the head of the journal in `state` with `keys`, holding the run lock of `env` so that
/// no run appends meanwhile, and keeps [`HEAD_FILE`] with the signatures beside the journal
/// (a signature file of a key not used this time is removed: it signed an older head).
pub fn sign(state: &PrivateDir, env: &str, keys: &Keys) -> Result<Signed, SignError> {
    let _lock = RunLock::acquire(state, env).map_err(|e| SignError::State(e.to_string()))?;
    let (head, records) = head_of(state)?.ok_or_else(|| SignError::NoJournal {
        state: state.path().to_owned(),
    })?;
    let text = message(&head, records);
    let ssh = match &keys.ssh {
        Some(key) => Some(ssh_sign(key, &text)?),
        None => None,
    };
    let mac = keys.hmac.as_ref().map(|k| k.mac_file(&text));
    let put = |name: &str, content: &str| {
        state
            .write_atomic(name, true, &mut |w| w.write_all(content.as_bytes()))
            .map_err(|e| SignError::State(e.to_string()))
    };
    put(HEAD_FILE, &text)?;
    for (name, content) in [
        (SSH_SIG_FILE, ssh.as_ref().map(|(sig, _)| sig.as_str())),
        (MAC_FILE, mac.as_deref()),
    ] {
        match content {
            Some(c) => put(name, c)?,
            None => remove(state, name).map_err(|e| SignError::State(e.to_string()))?,
        }
    }
    Ok(Signed {
        head,
        records,
        ssh_key: ssh.map(|(_, key)| key),
        hmac_key: keys.hmac.as_ref().map(|k| k.id.clone()),
    })
}

/// Removes `name` from `dir` (never following a symlink); fine when it is not there.
fn remove(dir: &PrivateDir, name: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let c = std::ffi::CString::new(name).expect("a constant name");
    // SAFETY: a valid directory descriptor and NUL-terminated name; unlinkat never follows.
    if unsafe { libc::unlinkat(dir.fd().as_raw_fd(), c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    match std::io::Error::last_os_error() {
        e if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        e => Err(e),
    }
}

/// A private scratch directory for ssh-keygen's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, SignError> {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = format!(
            "{}-{n}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        let name = format!(
            "rehost-sign-{}",
            &blake3::hash(seed.as_bytes()).to_hex()[..16]
        );
        let path = std::env::temp_dir().join(name);
        // mkdir is exclusive: a directory planted under this name makes it fail, never reused.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| SignError::State(format!("{}: {e}", path.display())))?;
        Ok(Scratch(path))
    }

    fn write(&self, name: &str, content: &[u8]) -> Result<PathBuf, SignError> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.0.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .and_then(|mut f| f.write_all(content))
            .map_err(|e| SignError::State(format!("{}: {e}", p.display())))?;
        Ok(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// ssh-keygen's stderr, one line, without its chatter about which file it wrote.
fn ssh_keygen_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Signing file") && !l.starts_with("Write signature")
        })
        .collect();
    if lines.is_empty() {
        "it failed without saying why".into()
    } else {
        lines.join("; ")
    }
}

/// Signs `text` with `key` through `ssh-keygen -Y sign`; returns the armored signature and the
/// key as ssh-keygen names it (from `-Y check-novalidate`).
fn ssh_sign(key: &Path, text: &str) -> Result<(String, String), SignError> {
    let scratch = Scratch::new()?;
    let msg = scratch.write(HEAD_FILE, text.as_bytes())?;
    // The message is a file, not stdin: ssh-keygen may need stdin (or the terminal) to ask for
    // the key's passphrase.
    let out = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .arg(&msg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(SignError::NoSshKeygen)?;
    let failed = |message| SignError::SshSign {
        key: key.to_owned(),
        message,
    };
    if !out.status.success() {
        return Err(failed(ssh_keygen_message(&out.stderr)));
    }
    let sig_path = scratch.0.join(SSH_SIG_FILE);
    let sig = std::fs::read_to_string(&sig_path)
        .map_err(|e| failed(format!("no signature in {}: {e}", sig_path.display())))?;
    let check = ssh_keygen_verify(&["-Y", "check-novalidate", "-n", NAMESPACE], &sig, text)?;
    if !check.ok {
        return Err(failed(format!(
            "the signature it made does not check: {}",
            check.message
        )));
    }
    Ok((sig, check.key.unwrap_or_else(|| "an SSH key".into())))
}

/// What an `ssh-keygen -Y verify` or `check-novalidate` said.
struct SshCheck {
    ok: bool,
    /// `ED25519 key SHA256:…`, from its `Good "rehost" signature … with …` line.
    key: Option<String>,
    /// The identity the signature was good for (verify).
    identity: Option<String>,
    message: String,
}

fn ssh_keygen_verify(args: &[&str], sig: &str, text: &str) -> Result<SshCheck, SignError> {
    let scratch = Scratch::new()?;
    let sig_path = scratch.write(SSH_SIG_FILE, sig.as_bytes())?;
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .arg("-s")
        .arg(&sig_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(SignError::NoSshKeygen)?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(SignError::NoSshKeygen)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let good = stdout.lines().find(|l| l.starts_with("Good \""));
    let key = good
        .and_then(|l| l.rsplit_once(" with "))
        .map(|(_, k)| k.trim().to_owned());
    let identity = good
        .and_then(|l| l.split_once(" signature for "))
        .and_then(|(_, rest)| rest.rsplit_once(" with "))
        .map(|(id, _)| id.to_owned());
    Ok(SshCheck {
        ok: out.status.success() && good.is_some(),
        key,
        identity,
        message: ssh_keygen_message(&[out.stderr.as_slice(), out.stdout.as_slice()].concat()),
    })
}

/// What a head's signature is to be checked against.
#[derive(Debug, Default)]
pub struct Trust {
    /// ssh-keygen's allowed signers file.
    pub allowed_signers: Option<PathBuf>,
    /// The identity expected to have signed; without it, whoever the allowed signers file
    /// names for the signature's key (`ssh-keygen -Y find-principals`).
    pub identity: Option<String>,
    pub hmac: Option<HmacKey>,
}

impl Trust {
    pub fn is_empty(&self) -> bool {
        self.allowed_signers.is_none() && self.hmac.is_none()
    }
}

/// What the state directory holds about the head's signature, read without a key.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Seal {
    /// The head [`HEAD_FILE`] names and the record count it gives.
    pub head: String,
    pub records: usize,
    /// The journal line that has that head (1-based); `None` when no record has it.
    pub line: Option<usize>,
    /// Which signature files are there: `ssh`, `hmac`.
    pub kinds: Vec<String>,
}

/// What checking the signature found.
#[derive(Debug, Default)]
pub struct SealCheck {
    pub seal: Option<Seal>,
    /// What was proved, one line each (`SSH signature of ops@example.org (ED25519 key …)`).
    pub authenticated: Vec<String>,
    /// `(file, message)`: what does not hold.
    pub problems: Vec<(String, String)>,
    /// What should be known but is not wrong (records appended after the signed head, when no
    /// key was given to check against).
    pub notes: Vec<String>,
}

/// Checks the signature files of `state` against the journal, whose lines' chain digests are
/// `chains` (in journal order), and against `trust`. Without a key only the signed head is
/// compared with the journal (a head no record has means the journal was rewritten after it
/// was signed); with one, the signature must be there, be good, and cover every record.
pub fn check(state: &PrivateDir, chains: &[Option<String>], trust: &Trust) -> SealCheck {
    let mut c = SealCheck::default();
    let problem = |c: &mut SealCheck, file: &str, m: String| c.problems.push((file.into(), m));
    let read = |name: &str| match state.read(name) {
        Ok(b) => Ok(b.map(|b| String::from_utf8_lossy(&b).into_owned())),
        Err(e) => Err(e.to_string()),
    };
    let text = match read(HEAD_FILE) {
        Err(e) => {
            problem(&mut c, HEAD_FILE, format!("cannot be read: {e}"));
            return c;
        }
        Ok(None) => {
            if !trust.is_empty() {
                problem(
                    &mut c,
                    HEAD_FILE,
                    "missing: the journal's head was never signed, or the signature was removed; nothing vouches for the journal".into(),
                );
            }
            return c;
        }
        Ok(Some(t)) => t,
    };
    let Some((head, records)) = parse_message(&text) else {
        problem(
            &mut c,
            HEAD_FILE,
            "is not a signed head rehost wrote (changed or damaged)".into(),
        );
        return c;
    };
    let line = chains
        .iter()
        .position(|d| d.as_deref() == Some(head.as_str()))
        .map(|i| i + 1);
    let mut kinds = Vec::new();
    let sig = read(SSH_SIG_FILE);
    let mac = read(MAC_FILE);
    if matches!(sig, Ok(Some(_))) {
        kinds.push("ssh".to_owned());
    }
    if matches!(mac, Ok(Some(_))) {
        kinds.push("hmac".to_owned());
    }
    c.seal = Some(Seal {
        head: head.clone(),
        records,
        line,
        kinds,
    });
    match line {
        None => problem(
            &mut c,
            HEAD_FILE,
            format!(
                "it signs the head {head}, which no record of the journal has: the journal was rewritten after it was signed"
            ),
        ),
        Some(n) if n != records => problem(
            &mut c,
            HEAD_FILE,
            format!(
                "it says the head {head} stands for {records} records, but it is the head of record {n}: the journal was rewritten after it was signed"
            ),
        ),
        Some(n) if n < chains.len() => {
            let m = format!(
                "the signature covers journal records 1 to {n}; records {} to {} were appended after it and are not signed",
                n + 1,
                chains.len()
            );
            if trust.is_empty() {
                c.notes.push(m);
            } else {
                problem(&mut c, HEAD_FILE, m);
            }
        }
        Some(_) => {}
    }
    // A good signature over a head that is not the journal's proves nothing about the journal.
    let head_ok = c.problems.is_empty();
    if let Some(signers) = &trust.allowed_signers {
        match sig {
            Err(e) => problem(&mut c, SSH_SIG_FILE, format!("cannot be read: {e}")),
            Ok(None) => problem(
                &mut c,
                SSH_SIG_FILE,
                "missing: the head was not signed with an SSH key, or the signature was removed"
                    .into(),
            ),
            Ok(Some(sig)) => match ssh_check(signers, trust.identity.as_deref(), &sig, &text) {
                Ok(who) => c.authenticated.push(format!("SSH signature: {who}")),
                Err(m) => problem(&mut c, SSH_SIG_FILE, m),
            },
        }
    }
    if let Some(key) = &trust.hmac {
        match mac {
            Err(e) => problem(&mut c, MAC_FILE, format!("cannot be read: {e}")),
            Ok(None) => problem(
                &mut c,
                MAC_FILE,
                "missing: the head was not signed with an HMAC key, or the MAC was removed".into(),
            ),
            Ok(Some(m)) => match parse_mac_file(&m) {
                None => problem(
                    &mut c,
                    MAC_FILE,
                    "is not a MAC rehost wrote (changed or damaged)".into(),
                ),
                Some((id, _)) if id != key.id => problem(
                    &mut c,
                    MAC_FILE,
                    format!(
                        "it was made with the key {id}, not with {} (key {}): a different key",
                        key.path.display(),
                        key.id
                    ),
                ),
                // `blake3::Hash` compares in constant time.
                Some((_, mac)) if mac != key.mac(text.as_bytes()) => problem(
                    &mut c,
                    MAC_FILE,
                    format!(
                        "the MAC does not match {HEAD_FILE} under the key {} (key {}): the signed head was changed",
                        key.path.display(),
                        key.id
                    ),
                ),
                Some(_) => c.authenticated.push(format!(
                    "HMAC with the key {} (key {})",
                    key.path.display(),
                    key.id
                )),
            },
        }
    }
    if !head_ok {
        c.authenticated.clear();
    }
    c
}

/// Checks an SSH signature against an allowed signers file: who signed, or why it does not hold.
fn ssh_check(
    signers: &Path,
    identity: Option<&str>,
    sig: &str,
    text: &str,
) -> Result<String, String> {
    let err = |e: SignError| e.to_string();
    let identities: Vec<String> = match identity {
        Some(i) => vec![i.to_owned()],
        None => {
            // Who the allowed signers file names for the signature's key.
            let scratch = Scratch::new().map_err(err)?;
            let sig_path = scratch.write(SSH_SIG_FILE, sig.as_bytes()).map_err(err)?;
            let out = Command::new("ssh-keygen")
                .args(["-Y", "find-principals", "-f"])
                .arg(signers)
                .arg("-s")
                .arg(&sig_path)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| err(SignError::NoSshKeygen(e)))?;
            let found: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            if !out.status.success() || found.is_empty() {
                return Err(format!(
                    "the key that made the signature is not in the allowed signers file {}: the head was signed by someone else, or re-signed with another key ({})",
                    signers.display(),
                    ssh_keygen_message(&out.stderr)
                ));
            }
            found
        }
    };
    let mut why = Vec::new();
    for id in &identities {
        let signers = signers.to_string_lossy();
        let check = ssh_keygen_verify(
            &["-Y", "verify", "-f", &signers, "-I", id, "-n", NAMESPACE],
            sig,
            text,
        )
        .map_err(err)?;
        if check.ok {
            return Ok(format!(
                "good signature of {} with {}, allowed by {}",
                check.identity.as_deref().unwrap_or(id),
                check.key.as_deref().unwrap_or("an SSH key"),
                signers
            ));
        }
        why.push(check.message);
    }
    Err(format!(
        "the SSH signature does not verify for {} against the allowed signers file {}: {} (the signed head was changed, or signed by someone else)",
        identities.join(", "),
        signers.display(),
        why.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_and_nothing_else_does() {
        let head = "ab".repeat(32);
        let m = message(&head, 7);
        assert_eq!(parse_message(&m), Some((head.clone(), 7)));
        assert_eq!(parse_message(&m.replace("records 7", "records x")), None);
        assert_eq!(parse_message(&format!("{m}extra\n")), None);
        assert_eq!(parse_message(&m.to_uppercase()), None);
        assert_eq!(parse_message(m.trim_end()), None);
    }

    #[test]
    fn an_hmac_key_is_refused_inside_the_state_base_too_loose_or_too_short_and_never_shown() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join(".rehost/plan");
        std::fs::create_dir_all(base.join("production")).unwrap();
        let write = |p: &Path, bytes: &[u8], mode: u32| {
            std::fs::write(p, bytes).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let secret = [0x5au8; 32];
        let inside = base.join("production/key");
        write(&inside, &secret, 0o600);
        let e = HmacKey::load(&inside, &base).unwrap_err();
        assert!(matches!(e, SignError::KeyInState { .. }), "{e}");
        // Through a symlink from outside: still inside.
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&inside, &link).unwrap();
        assert!(matches!(
            HmacKey::load(&link, &base).unwrap_err(),
            SignError::KeyInState { .. }
        ));
        // A state directory not created yet is still recognised.
        let fresh = d.path().join("new-state/plan");
        std::fs::create_dir_all(d.path().join("new-state")).unwrap();
        let k = d.path().join("new-state/k");
        write(&k, &secret, 0o600);
        assert!(HmacKey::load(&k, &fresh).is_ok());

        let outside = d.path().join("key");
        write(&outside, &secret, 0o644);
        assert!(matches!(
            HmacKey::load(&outside, &base).unwrap_err(),
            SignError::KeyMode { mode: 0o644, .. }
        ));
        write(&outside, &secret[..31], 0o600);
        assert!(matches!(
            HmacKey::load(&outside, &base).unwrap_err(),
            SignError::KeyShort { len: 31, .. }
        ));
        write(&outside, &secret, 0o600);
        let key = HmacKey::load(&outside, &base).unwrap();
        let shown = format!("{key:?} {}", key.mac_file(&message(&"0".repeat(64), 1)));
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.contains(&hex), "{shown}");
        // The MAC is BLAKE3 keyed with the derived key: what b3sum --keyed computes.
        let m = message(&"0".repeat(64), 1);
        let expect = blake3::keyed_hash(&blake3::derive_key(MAC_CONTEXT, &secret), m.as_bytes());
        assert_eq!(key.mac(m.as_bytes()), expect);
        let (id, mac) = parse_mac_file(&key.mac_file(&m)).unwrap();
        assert_eq!((id.as_str(), mac), (key.id(), expect));
    }
}
