//! The effective ssh configuration for a destination, as `ssh -G` reports it (the user's config
//! file and defaults applied). rehost reads it to respect the user's own choices: whether host
//! keys are checked strictly, which known_hosts file holds them, keepalives, ciphers.

use std::ffi::OsString;
use std::process::{Command, Stdio};

#[derive(Clone, Debug, Default)]
pub struct EffectiveConfig {
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// `ask` (ssh's default), `yes`/`true`, `no`/`false` or `accept-new`.
    pub strict_host_key_checking: String,
    pub known_hosts: Vec<String>,
    pub global_known_hosts: Vec<String>,
    /// `HostKeyAlias`: the name the host's key is filed under in known_hosts, if set.
    pub host_key_alias: Option<String>,
    pub server_alive_interval: u32,
    /// `Ciphers`, in ssh's order of preference.
    pub ciphers: Vec<String>,
}

impl EffectiveConfig {
    /// Parses `ssh -G` output.
    pub fn parse(text: &str) -> EffectiveConfig {
        let mut c = EffectiveConfig {
            port: 22,
            ..Default::default()
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once(' ') else {
                continue;
            };
            match k {
                "hostname" => c.hostname = v.to_owned(),
                "port" => c.port = v.parse().unwrap_or(22),
                "user" => c.user = v.to_owned(),
                "stricthostkeychecking" => c.strict_host_key_checking = v.to_owned(),
                "userknownhostsfile" => {
                    c.known_hosts = v.split_whitespace().map(str::to_owned).collect()
                }
                "globalknownhostsfile" => {
                    c.global_known_hosts = v.split_whitespace().map(str::to_owned).collect()
                }
                "hostkeyalias" => c.host_key_alias = Some(v.to_owned()),
                "serveraliveinterval" => c.server_alive_interval = v.parse().unwrap_or(0),
                "ciphers" => c.ciphers = v.split(',').map(str::to_owned).collect(),
                _ => {}
            }
        }
        c
    }

    /// Runs `ssh -G ARGS -- DESTINATION`.
    pub fn query(args: &[OsString], destination: &str) -> Result<EffectiveConfig, String> {
        let out = Command::new("ssh")
            .arg("-G")
            .args(args)
            .arg("--")
            .arg(destination)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run ssh: {e} (install openssh-client)"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(EffectiveConfig::parse(&String::from_utf8_lossy(
            &out.stdout,
        )))
    }

    /// ssh's own configuration for `destination`, no config file read (`ssh -G -F none`):
    /// what ssh does when nobody chose.
    pub fn compiled_default(destination: &str) -> Result<EffectiveConfig, String> {
        EffectiveConfig::query(&["-F".into(), "none".into()], destination)
    }

    /// The `Ciphers` rehost asks for on its connection to a host, if any: AES-GCM first when
    /// nobody chose ciphers (the effective list is ssh's compiled default, no user or system
    /// config set one) and this machine's CPU has AES instructions; the rest of the default
    /// list follows in its order, so a server without AES-GCM still agrees on one. OpenSSH's
    /// default prefers chacha20-poly1305, whose Poly1305 OpenSSH computes in portable C: over
    /// loopback, 2 GB crossed one connection in 8.0 s with it and in 5.3 s with aes128-gcm,
    /// and the relay between two ssh hosts pushes every byte through two connections
    /// (docs/tree.md). A configured list (yours, or a system policy such as RHEL's crypto
    /// policies) is kept as it is.
    pub fn preferred_ciphers(
        &self,
        default: &EffectiveConfig,
        cpu_has_aes: bool,
    ) -> Option<String> {
        const GCM: [&str; 2] = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"];
        if !cpu_has_aes || self.ciphers != default.ciphers {
            return None;
        }
        let gcm = GCM
            .into_iter()
            .filter(|g| self.ciphers.iter().any(|c| c == g));
        let rest = self
            .ciphers
            .iter()
            .map(String::as_str)
            .filter(|c| !GCM.contains(c));
        let preferred: Vec<&str> = gcm.chain(rest).collect();
        // Nothing to prefer (no AES-GCM in the list), or already first: ssh's own choice.
        if !preferred.iter().any(|c| GCM.contains(c)) || preferred == self.ciphers {
            return None;
        }
        Some(preferred.join(","))
    }

    /// Whether the user left host key checking at ssh's interactive default, which rehost
    /// (never interactive) turns into `yes`.
    pub fn strict_is_default(&self) -> bool {
        matches!(self.strict_host_key_checking.as_str(), "ask" | "")
    }
}

/// Whether this machine's CPU has AES instructions (`aes` in `/proc/cpuinfo`'s x86 `flags` or
/// ARM `Features`), which make AES-GCM cheaper than chacha20-poly1305.
pub fn cpu_has_aes() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|text| cpuinfo_has_aes(&text))
}

fn cpuinfo_has_aes(text: &str) -> bool {
    text.lines().any(|line| {
        let Some((key, value)) = line.split_once(':') else {
            return false;
        };
        matches!(key.trim(), "flags" | "Features") && value.split_whitespace().any(|f| f == "aes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "ciphers chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com\n";

    #[test]
    fn aes_gcm_first_only_when_nobody_chose_and_the_cpu_has_aes() {
        let default = EffectiveConfig::parse(DEFAULT);
        assert_eq!(
            default.preferred_ciphers(&default, true).as_deref(),
            Some(
                "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"
            )
        );
        assert_eq!(default.preferred_ciphers(&default, false), None);
        // A list somebody configured is theirs, even when it prefers chacha20.
        let chosen = EffectiveConfig::parse("ciphers chacha20-poly1305@openssh.com,aes256-ctr\n");
        assert_eq!(chosen.preferred_ciphers(&default, true), None);
        // An ssh whose default already starts with AES-GCM is left alone.
        let gcm_first = EffectiveConfig::parse(
            "ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\n",
        );
        assert_eq!(gcm_first.preferred_ciphers(&gcm_first, true), None);
        // An ssh without AES-GCM, or whose -G prints no ciphers: nothing to prefer.
        let none = EffectiveConfig::parse("ciphers chacha20-poly1305@openssh.com,aes128-ctr\n");
        assert_eq!(none.preferred_ciphers(&none, true), None);
        let empty = EffectiveConfig::parse("");
        assert_eq!(empty.preferred_ciphers(&empty, true), None);
    }

    #[test]
    fn aes_instructions_read_from_cpuinfo() {
        assert!(cpuinfo_has_aes(
            "processor\t: 0\nflags\t\t: fpu sse2 aes avx2\n"
        ));
        assert!(cpuinfo_has_aes("Features\t: fp asimd aes pmull sha1\n"));
        assert!(!cpuinfo_has_aes("flags\t\t: fpu sse2 vaes-like avx2\n"));
        assert!(!cpuinfo_has_aes("model name\t: aes\n"));
    }
}
