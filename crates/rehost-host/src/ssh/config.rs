//! The effective ssh configuration for a destination, as `ssh -G` reports it (the user's config
//! file and defaults applied). rehost reads it to respect the user's own choices: whether host
//! keys are checked strictly, which known_hosts file holds them, keepalives.

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

    /// Whether the user left host key checking at ssh's interactive default, which rehost
    /// (never interactive) turns into `yes`.
    pub fn strict_is_default(&self) -> bool {
        matches!(self.strict_host_key_checking.as_str(), "ask" | "")
    }
}
