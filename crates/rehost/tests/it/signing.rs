//! Issue 18: the journal's chain, honestly. A hash chain without a key proves consistency, not
//! authenticity: whoever can write the state directory can rewrite a record and recompute the
//! chain, and `status --verify` passed. The head is now signed with a key the operator holds
//! (an SSH key through real `ssh-keygen`, or an HMAC key from a file outside the state
//! directory), `status --verify` checks the signature, and an unsigned run says what its chain
//! proves and prints the head to record elsewhere.

use crate::support::*;
use rehost_test::{Output, TestDir};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Two commands, a built-in copy and its verification: outputs and both manifests to keep.
const BODY: &str = TWO_RUNS_A_COPY_AND_ITS_VERIFICATION;

const STATE: &str = ".rehost/plan/test";

fn setup() -> TestDir {
    let d = TestDir::new();
    write_plan(&d, BODY);
    d.write("test-old/srv/files/a.txt", "alpha\n");
    std::fs::create_dir_all(d.join("test-new/srv")).unwrap();
    // Keys live outside the state directory, as an operator's do.
    std::fs::create_dir_all(d.join("keys")).unwrap();
    d
}

fn run(d: &TestDir, extra: &[&str]) -> Output {
    let mut args = vec!["run", "plan.toml", "--env", "test"];
    args.extend_from_slice(extra);
    rehost(d, &args)
}

fn verify(d: &TestDir, extra: &[&str]) -> Output {
    let mut args = vec!["status", "plan.toml", "--env", "test", "--verify"];
    args.extend_from_slice(extra);
    rehost(d, &args)
}

/// An ed25519 key made by ssh-keygen for this test, and an allowed signers line for it.
fn ssh_key(d: &TestDir, name: &str, identity: &str) -> (String, String) {
    let keygen = rehost_test::require_tool("ssh-keygen");
    let path = d.join(&format!("keys/{name}"));
    let st = std::process::Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", identity, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut fields = public.split_whitespace();
    let line = format!(
        "{identity} {} {}\n",
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    (format!("keys/{name}"), line)
}

/// The key's fingerprint as `ssh-keygen -l` prints it: the differential peer of what
/// `status --verify` reports.
fn fingerprint(d: &TestDir, key: &str) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-f"])
        .arg(d.join(&format!("{key}.pub")))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// The base64 body of a private key file: never to appear anywhere rehost writes.
fn private_body(d: &TestDir, key: &str) -> Vec<String> {
    d.read(key)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(String::from)
        .collect()
}

/// What an attacker who can write the state directory does: change a record's text and
/// recompute every checksum and chain digest after it. Returns the forged journal's head.
fn forge(d: &TestDir, state: &str, from: &str, to: &str) -> String {
    let path = d.join(&format!("{state}/journal"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "nothing to forge: {from}");
    let mut prev = rehost_journal::journal::GENESIS.to_owned();
    let mut out = String::new();
    for line in text.lines() {
        let json = line.split('\t').next().unwrap().replace(from, to);
        let record: rehost_journal::Record = serde_json::from_str(&json).unwrap();
        let (l, head) = rehost_journal::journal::encode(&record, &prev);
        out.push_str(&l);
        prev = head;
    }
    std::fs::write(&path, out).unwrap();
    prev
}

/// The head digest `run` printed at its end.
fn printed_head(o: &Output) -> String {
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("journal head "))
        .unwrap_or_else(|| panic!("no head printed: {}", o.all()));
    line.split_whitespace().nth(2).unwrap().to_owned()
}

fn assert_mismatch(o: &Output, what: &str) {
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout.contains(&format!("MISMATCH {what}")),
        "expected `MISMATCH {what}` in:\n{}",
        o.stdout
    );
}

/// Everything rehost wrote: its outputs and every file of the state directory, as bytes.
fn everything_written(d: &TestDir, outputs: &[&Output]) -> Vec<u8> {
    let mut all: Vec<u8> = outputs.iter().flat_map(|o| o.all().into_bytes()).collect();
    fn walk(p: &Path, all: &mut Vec<u8>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, all);
            } else if let Ok(b) = std::fs::read(&p) {
                all.extend_from_slice(&b);
            }
        }
    }
    walk(&d.join(".rehost"), &mut all);
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The reproduction: without a signature a rewritten journal with a recomputed chain verifies.
/// It still does (that is what a chain is), but the output says the chain proves consistency,
/// not authenticity, and the head the run printed, recorded elsewhere, catches the rewrite.
#[test]
fn an_unsigned_journal_says_what_its_chain_proves_and_the_recorded_head_catches_a_rewrite() {
    let d = setup();
    let o = run(&d, &[]);
    assert_eq!(o.code, 0, "{}", o.all());
    let head = printed_head(&o);
    assert_eq!(head.len(), 64);
    assert!(
        o.stdout.contains("record it in the change ticket"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(&format!(
            "`rehost status plan.toml --env test --verify --head {head}`"
        )),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("not signed: the hash chain proves consistency, not authenticity"),
        "{}",
        o.stdout
    );
    let v = verify(&d, &[]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains("consistency, not authenticity"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains(&format!("head {head}")), "{}", v.stdout);
    // --json ends with the head as one JSON line.
    let j = run(&d, &["--json"]);
    assert_eq!(j.code, 0, "{}", j.all());
    let last: serde_json::Value = serde_json::from_str(j.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "journal_head");
    assert_eq!(last["signed"], serde_json::Value::Null);
    let note = last["note"].as_str().unwrap();
    assert!(note.contains("consistency, not authenticity"), "{note}");
    let head = last["head"].as_str().unwrap().to_owned();

    // Someone who can write the state directory rewrites who confirmed and what a step said.
    let forged = forge(&d, STATE, "out-a", "out-X");
    assert_ne!(forged, head);
    let v = verify(&d, &[]);
    assert_eq!(v.code, 0, "a consistent forgery verifies: {}", v.all());
    assert!(
        v.stdout.contains("consistency, not authenticity"),
        "{}",
        v.stdout
    );
    // The head recorded in the change ticket tells.
    let v = verify(&d, &["--head", &head]);
    assert_mismatch(
        &v,
        &format!("journal: no record has the head digest {head}: the journal was changed since"),
    );
    // The report says the same.
    let r = rehost(
        &d,
        &[
            "report",
            "plan.toml",
            "--env",
            "test",
            "--format",
            "md,json",
        ],
    );
    let md = d.read(&format!("{STATE}/report.md"));
    assert!(
        md.contains("consistency, not authenticity"),
        "{}\n{md}",
        r.all()
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.read(&format!("{STATE}/report.json"))).unwrap();
    assert_eq!(
        json["run"]["integrity"]["signature"],
        serde_json::Value::Null
    );
}

#[test]
fn a_signed_head_verifies_and_a_rewritten_journal_or_a_wrong_signer_does_not() {
    let d = setup();
    let (key, allowed) = ssh_key(&d, "operator", "operator@example.org");
    let (_, other) = ssh_key(&d, "intruder", "intruder@example.org");
    d.write("keys/allowed_signers", &allowed);
    d.write(
        "keys/other_signers",
        other.replace("intruder@", "operator@"),
    );
    // A key that is not there is refused before anything runs.
    let o = run(&d, &["--sign-key", "keys/none"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("failed to read the signing key keys/none"),
        "{}",
        o.stderr
    );
    assert!(!d.join(&format!("{STATE}/journal")).exists(), "nothing ran");
    // A file ssh-keygen cannot sign with: the run is recorded, the signing failure is trouble.
    d.write("keys/bogus", "not a key\n");
    let o = run(&d, &["--sign-key", "keys/bogus"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("failed to sign the journal's head with keys/bogus: ssh-keygen:"),
        "{}",
        o.stderr
    );
    assert!(!d.join(&format!("{STATE}/journal.head")).exists());
    let o = run(&d, &["--sign-key", &key]);
    assert_eq!(o.code, 0, "{}", o.all());
    let head = printed_head(&o);
    let fp = fingerprint(&d, &key);
    assert!(
        o.stdout.contains(&format!(
            "signed: SSH signature with ED25519 key {fp} in journal.head.sig"
        )),
        "{}",
        o.stdout
    );
    // Beside the journal: the signed text naming the head, and ssh-keygen's own signature.
    let signed = d.read(&format!("{STATE}/journal.head"));
    assert!(signed.contains(&format!("head {head}\n")), "{signed}");
    let sig = d.read(&format!("{STATE}/journal.head.sig"));
    assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----"), "{sig}");
    // ssh-keygen checks it without rehost, as docs/journal.md says.
    let st = std::process::Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "rehost",
            "-I",
            "operator@example.org",
            "-f",
        ])
        .arg(d.join("keys/allowed_signers"))
        .arg("-s")
        .arg(d.join(&format!("{STATE}/journal.head.sig")))
        .stdin(std::fs::File::open(d.join(&format!("{STATE}/journal.head"))).unwrap())
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");

    let good = verify(&d, &["--allowed-signers", "keys/allowed_signers"]);
    assert_eq!(good.code, 0, "{}", good.all());
    assert!(
        good.stdout.contains(&format!(
            "authentic: SSH signature: good signature of operator@example.org with ED25519 key {fp}"
        )),
        "{}",
        good.stdout
    );
    let with_id = verify(
        &d,
        &[
            "--allowed-signers",
            "keys/allowed_signers",
            "-I",
            "operator@example.org",
        ],
    );
    assert_eq!(with_id.code, 0, "{}", with_id.all());
    // Without a key it is described, not taken for proof.
    let unchecked = verify(&d, &[]);
    assert_eq!(unchecked.code, 0, "{}", unchecked.all());
    assert!(
        unchecked
            .stdout
            .contains("signed (journal.head.sig), but the signature was not checked"),
        "{}",
        unchecked.stdout
    );

    // A wrong signer: the allowed signers file names another key for the operator.
    let wrong = verify(&d, &["--allowed-signers", "keys/other_signers"]);
    assert_mismatch(
        &wrong,
        "journal.head.sig: the key that made the signature is not in the allowed signers file",
    );
    // The right key, but a different identity expected.
    let wrong_id = verify(
        &d,
        &[
            "--allowed-signers",
            "keys/allowed_signers",
            "-I",
            "intruder@example.org",
        ],
    );
    assert_mismatch(
        &wrong_id,
        "journal.head.sig: the SSH signature does not verify for intruder@example.org",
    );

    // The journal rewritten and its chain recomputed: the signed head is no longer in it.
    let copy = std::process::Command::new("cp")
        .args(["-a", ".rehost", "pristine"])
        .current_dir(d.path())
        .status()
        .unwrap();
    assert!(copy.success());
    let forged = forge(&d, STATE, "out-a", "out-X");
    let o = verify(&d, &["--allowed-signers", "keys/allowed_signers"]);
    assert_mismatch(
        &o,
        &format!(
            "journal.head: it signs the head {head}, which no record of the journal has: the journal was rewritten after it was signed"
        ),
    );
    assert!(o.stdout.contains("NOT authentic"), "{}", o.stdout);
    // Even without the key, a signed head that no record has is a mismatch; the report says so.
    assert_mismatch(&verify(&d, &[]), "journal.head: it signs the head");
    let r = rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "--format", "md"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    let md = d.read(&format!("{STATE}/report.md"));
    assert!(
        md.contains("signs a head that no record of the journal has"),
        "{md}"
    );
    // The forger also rewrites journal.head to the new head: the signature does not hold.
    let text = d
        .read(&format!("{STATE}/journal.head"))
        .replace(&head, &forged);
    d.write(&format!("{STATE}/journal.head"), text);
    let o = verify(&d, &["--allowed-signers", "keys/allowed_signers"]);
    assert_mismatch(
        &o,
        "journal.head.sig: the SSH signature does not verify for operator@example.org",
    );
    // And re-signs with a key of their own: not an allowed signer.
    std::fs::remove_file(d.join(&format!("{STATE}/journal.head.sig"))).unwrap();
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "rehost", "-f"])
        .arg(d.join("keys/intruder"))
        .arg(d.join(&format!("{STATE}/journal.head")))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let o = verify(&d, &["--allowed-signers", "keys/allowed_signers"]);
    assert_mismatch(
        &o,
        "journal.head.sig: the key that made the signature is not in the allowed signers file",
    );

    // The signature removed: with a key to check, nothing vouches for the journal.
    std::fs::remove_dir_all(d.join(".rehost")).unwrap();
    std::fs::rename(d.join("pristine"), d.join(".rehost")).unwrap();
    std::fs::remove_file(d.join(&format!("{STATE}/journal.head.sig"))).unwrap();
    std::fs::remove_file(d.join(&format!("{STATE}/journal.head"))).unwrap();
    let o = verify(&d, &["--allowed-signers", "keys/allowed_signers"]);
    assert_mismatch(&o, "journal.head: missing");

    // Records appended by an unsigned run after the signed head are not covered.
    let s = run(&d, &["--sign-key", &key]);
    assert_eq!(s.code, 0, "{}", s.all());
    let text = d
        .read("plan.toml")
        .replace("Test migration", "Renamed migration");
    d.write("plan.toml", &text);
    let unsigned = run(&d, &[]);
    assert_eq!(unsigned.code, 0, "{}", unsigned.all());
    let o = verify(&d, &["--allowed-signers", "keys/allowed_signers"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout
            .contains("were appended after it and are not signed"),
        "{}",
        o.stdout
    );

    // No byte of the private key anywhere rehost wrote or printed.
    let all = everything_written(&d, &[&o, &good, &wrong, &s, &unsigned]);
    for l in private_body(&d, &key) {
        assert!(
            !contains(&all, l.as_bytes()),
            "private key material leaked: {l}"
        );
    }
}

/// The key may be a public key whose private half is in ssh-agent, as ssh-keygen allows.
#[test]
fn a_public_key_signs_through_ssh_agent() {
    let d = setup();
    let (key, allowed) = ssh_key(&d, "agent", "agent@example.org");
    d.write("keys/allowed_signers", &allowed);
    let sock = d.join("agent.sock");
    let agent = std::process::Command::new(rehost_test::require_tool("ssh-agent"))
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "ssh-agent did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = std::process::Command::new(rehost_test::require_tool("ssh-add"))
        .arg(d.join(&key))
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    // Only the public key is given; the private file is gone from disk.
    std::fs::remove_file(d.join(&key)).unwrap();
    let public = format!("{key}.pub");
    let o = rehost_test::run_env(
        bin(),
        &["run", "plan.toml", "--env", "test", "--sign-key", &public],
        d.path(),
        None,
        &[("SSH_AUTH_SOCK", sock.as_os_str())],
    );
    rehost_test::stop_child(agent, libc::SIGTERM, std::time::Duration::from_secs(5));
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("signed: SSH signature"), "{}", o.stdout);
    let v = verify(&d, &["--allowed-signers", "keys/allowed_signers"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains("authentic: SSH signature"),
        "{}",
        v.stdout
    );
}

fn hmac_key(d: &TestDir, name: &str, byte: u8) -> String {
    let p = d.write(&format!("keys/{name}"), [byte; 32]);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!("keys/{name}")
}

#[test]
fn an_hmac_signed_head_verifies_and_a_forgery_or_another_key_does_not() {
    let d = setup();
    let key = hmac_key(&d, "hmac", 0xa7);
    let other = hmac_key(&d, "other", 0x3c);

    // A key inside the state directory is refused before anything runs.
    std::fs::create_dir_all(d.join(".rehost/plan")).unwrap();
    let inside = d.write(".rehost/plan/hmac", [0xa7u8; 32]);
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = run(&d, &["--hmac-key", ".rehost/plan/hmac"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("it is inside the state directory"),
        "{}",
        o.stderr
    );
    assert!(!d.join(&format!("{STATE}/journal")).exists(), "nothing ran");
    std::fs::remove_file(&inside).unwrap();

    // The key may come from the environment.
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .env("REHOST_HMAC_KEY", &key)
        .stdout_has("signed: HMAC with the key")
        .success();
    snap!(ran, "run");
    let head = printed_head(&ran.out);
    let status_verify = ["status", "plan.toml", "--env", "test", "--verify"];
    let ran = test_in(&d)
        .args(status_verify)
        .args(["--hmac-key", &key])
        .stdout_has("authentic: HMAC with the key keys/hmac")
        .success();
    snap!(ran, "status_verify");
    let v = ran.out;

    let ran = test_in(&d)
        .args(status_verify)
        .args(["--hmac-key", &key, "--json"])
        .success();
    snap!(ran, "status_verify_json");
    let j: serde_json::Value = serde_json::from_str(ran.stdout()).unwrap();
    assert_eq!(j["signature"]["head"], head.as_str());
    assert_eq!(j["signature"]["kinds"], serde_json::json!(["hmac"]));
    assert!(
        j["authenticated"][0]
            .as_str()
            .unwrap()
            .starts_with("HMAC with the key keys/hmac"),
        "{j}"
    );

    // b3sum recomputes the MAC as docs/journal.md says: the key file through
    // `--derive-key`, then `--keyed` over journal.head.
    let b3 = rehost_test::require_tool("b3sum");
    let derived = std::process::Command::new(&b3)
        .args([
            "--no-names",
            "--derive-key",
            rehost_journal::signing::MAC_CONTEXT,
        ])
        .stdin(std::fs::File::open(d.join(&key)).unwrap())
        .output()
        .unwrap();
    let hex = String::from_utf8(derived.stdout).unwrap();
    let raw: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex.trim()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let raw_path = d.write("keys/raw", &raw);
    let mac = std::process::Command::new(&b3)
        .args(["--no-names", "--keyed"])
        .arg(d.join(&format!("{STATE}/journal.head")))
        .stdin(std::fs::File::open(&raw_path).unwrap())
        .output()
        .unwrap();
    let mac = String::from_utf8(mac.stdout).unwrap();
    assert!(
        d.read(&format!("{STATE}/journal.head.mac"))
            .contains(&format!("mac {}", mac.trim())),
        "b3sum says {mac}"
    );

    // Another key: named as a different key.
    let o = verify(&d, &["--hmac-key", &other]);
    assert_mismatch(&o, "journal.head.mac: it was made with the key");
    // A forged journal with a recomputed chain, and journal.head rewritten to match.
    let forged = forge(&d, STATE, "out-a", "out-X");
    assert_mismatch(
        &verify(&d, &["--hmac-key", &key]),
        &format!("journal.head: it signs the head {head}, which no record of the journal has"),
    );
    let text = d
        .read(&format!("{STATE}/journal.head"))
        .replace(&head, &forged);
    d.write(&format!("{STATE}/journal.head"), text);
    assert_mismatch(
        &verify(&d, &["--hmac-key", &key]),
        "journal.head.mac: the MAC does not match journal.head",
    );
    // Status refuses a key inside the state directory too (it would vouch for itself).
    let inside = d.write(".rehost/plan/hmac", [0xa7u8; 32]);
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = verify(&d, &["--hmac-key", ".rehost/plan/hmac"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("inside the state directory"),
        "{}",
        o.stderr
    );
    std::fs::remove_file(&inside).unwrap();

    // The key's bytes appear nowhere rehost wrote or printed, raw or as hex.
    let all = everything_written(&d, &[&o, &v]);
    let hex: String = [0xa7u8; 32].iter().map(|b| format!("{b:02x}")).collect();
    assert!(!contains(&all, hex.as_bytes()), "HMAC key material leaked");
    assert!(!contains(&all, &[0xa7u8; 32]), "HMAC key material leaked");
}

/// `rehost report` signs too, and its integrity section names what vouches for the journal.
#[test]
fn report_signs_the_head_and_says_so() {
    let d = setup();
    let key = hmac_key(&d, "hmac", 0x42);
    assert_eq!(run(&d, &[]).code, 0);
    assert!(!d.join(&format!("{STATE}/journal.head")).exists());
    let o = rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "--hmac-key", &key],
    );
    assert!(o.code <= 1, "{}", o.all());
    assert!(
        o.stdout.contains("signed: HMAC with the key"),
        "{}",
        o.stdout
    );
    assert!(d.join(&format!("{STATE}/journal.head.mac")).exists());
    let md = d.read(&format!("{STATE}/report.md"));
    assert!(
        md.contains("signed with a key kept outside the state directory"),
        "{md}"
    );
    assert!(!md.contains("consistency, not authenticity"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&d.read(&format!("{STATE}/report.json"))).unwrap();
    assert_eq!(json["run"]["integrity"]["signature"]["kinds"][0], "hmac");
    assert_eq!(json["run"]["integrity"]["signature"]["covers_all"], true);
    assert!(verify(&d, &["--hmac-key", &key]).code == 0);
}
