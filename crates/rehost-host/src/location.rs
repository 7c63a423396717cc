//! Locations as rsync and scp users write them: `PATH`, `HOST:PATH`, `ssh://user@host:port/path`.

use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A path on this machine.
    Local(PathBuf),
    /// A path on a host: a plan host name or an ssh destination (`user@host`).
    Remote {
        host: String,
        port: Option<u16>,
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("empty location: give a path, HOST:PATH or ssh://user@host:port/path")]
    Empty,
    #[error("bad ssh:// location `{0}`: write ssh://[user@]host[:port]/path")]
    BadUrl(String),
}

impl Location {
    /// Parses a location. Like scp, a colon before any slash makes `HOST:PATH`; a path with a
    /// slash before its first colon (`./a:b`, `/x:y`) is local.
    pub fn parse(s: &str) -> Result<Location, LocationError> {
        if s.is_empty() {
            return Err(LocationError::Empty);
        }
        if let Some(rest) = s.strip_prefix("ssh://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => return Err(LocationError::BadUrl(s.to_owned())),
            };
            let (hostpart, port) = match authority.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                    let port = p
                        .parse::<u16>()
                        .map_err(|_| LocationError::BadUrl(s.to_owned()))?;
                    (h, Some(port))
                }
                _ => (authority, None),
            };
            let host = hostpart.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.ends_with('@') {
                return Err(LocationError::BadUrl(s.to_owned()));
            }
            return Ok(Location::Remote {
                host: host.to_owned(),
                port,
                path: path.to_owned(),
            });
        }
        match (s.find(':'), s.find('/')) {
            (Some(c), slash) if c > 0 && slash.is_none_or(|sl| c < sl) => Ok(Location::Remote {
                host: s[..c].to_owned(),
                port: None,
                path: s[c + 1..].to_owned(),
            }),
            _ => Ok(Location::Local(PathBuf::from(s))),
        }
    }
}

#[cfg(test)]
mod tests;
