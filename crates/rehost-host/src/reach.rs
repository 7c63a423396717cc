//! How a program running on one machine (rsync) reaches a path on another host: the remote
//! shell it is given (`-e`) and the `DESTINATION:PATH` it names. A host says it through
//! [`crate::Host::remote_end`]: an ssh host with a [`RemoteEnd`], this machine with none (a
//! program here names the path itself).

use crate::SshSpec;
use crate::ssh::rsync_e_word;
use std::path::Path;

/// A path on an ssh host as rsync (or another program that takes `HOST:PATH` and a remote
/// shell) names it from another machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEnd {
    /// The remote shell, as rsync's `-e` takes it: each word quoted for rsync's own splitting.
    pub shell: String,
    /// `DESTINATION:PATH`, the path resolved under the host's root.
    pub target: String,
    /// The ssh destination (`user@host`) and port, for messages.
    pub destination: String,
    pub port: Option<u16>,
}

impl RemoteEnd {
    /// The end of an ssh host's `resolved` path. `here`: the program runs on this machine, so
    /// the plan's ssh config file, identity file and jump host (files and names of this
    /// machine) are passed; else it runs on another host, which reaches this one with its own
    /// ssh setup.
    pub fn over_ssh(spec: &SshSpec, resolved: &Path, here: bool) -> RemoteEnd {
        RemoteEnd {
            shell: rsync_shell(spec, here),
            target: format!("{}:{}", spec.destination, resolved.to_string_lossy()),
            destination: spec.destination.clone(),
            port: spec.port,
        }
    }
}

/// The `-e` of rsync for an ssh host: the same options rehost passes to ssh, each word quoted
/// for rsync's own splitting (`ssh::rsync_e_word`, the one quoter). With `here` false (rsync
/// running on another host) the plan's ssh config, identity file and jump host are not passed:
/// they name files and hosts as this machine sees them.
fn rsync_shell(spec: &SshSpec, here: bool) -> String {
    let mut words = vec!["ssh".to_owned(), "-o".into(), "BatchMode=yes".into()];
    if let Some(port) = spec.port {
        words.extend(["-p".into(), port.to_string()]);
    }
    if here {
        if let Some(cfg) = &spec.ssh_config {
            words.extend(["-F".into(), cfg.to_string_lossy().into_owned()]);
        }
        if let Some(id) = &spec.identity_file {
            words.extend(["-i".into(), id.to_string_lossy().into_owned()]);
        }
        if let Some(j) = &spec.proxy_jump {
            words.extend(["-J".into(), j.clone()]);
        }
    }
    words
        .iter()
        .map(|w| rsync_e_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end a program on this machine uses carries the plan's ssh files; the one a program
    /// on another host uses does not (they name this machine's files); a word with a space or
    /// a `'` is quoted for rsync's splitting.
    #[test]
    fn the_remote_shell_passes_this_machines_files_only_from_here() {
        let spec = SshSpec {
            destination: "ops@new.example".into(),
            port: Some(2222),
            identity_file: Some("/home/ops/.ssh/id it's".into()),
            proxy_jump: Some("bastion".into()),
            ssh_config: Some("/etc/rehost/ssh_config".into()),
            root: None,
        };
        let here = RemoteEnd::over_ssh(&spec, Path::new("/srv/data"), true);
        assert_eq!(
            here,
            RemoteEnd {
                shell: "ssh -o BatchMode=yes -p 2222 -F /etc/rehost/ssh_config -i '/home/ops/.ssh/id it''s' -J bastion".into(),
                target: "ops@new.example:/srv/data".into(),
                destination: "ops@new.example".into(),
                port: Some(2222),
            }
        );
        let there = RemoteEnd::over_ssh(&spec, Path::new("/srv/data"), false);
        assert_eq!(there.shell, "ssh -o BatchMode=yes -p 2222");
        assert_eq!(there.target, here.target);
    }
}
