//! Connection strings: a `postgres://` URL whose password (if any) is taken out at once and
//! kept in a [`Secret`], so that what is displayed, journaled or reported never holds it.

use crate::DbError;

/// A password. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The password itself, for handing to the client's environment only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where and how to connect: a libpq URL without its password, the password if the URL had
/// one, and a file on the connecting host that holds the password (its first line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// `postgres://user@host:port/db?params`, never with a password.
    pub url: String,
    pub password: Option<Secret>,
    /// A file on the host that connects, whose first line is the password.
    pub password_file: Option<String>,
}

impl ConnInfo {
    /// Parses a `postgres://` or `postgresql://` URL. A password in the user part
    /// (`user:pw@`) or as a `password=` parameter is moved into [`ConnInfo::password`];
    /// `password_file=PATH` names a file on the connecting host.
    pub fn parse(url: &str) -> Result<ConnInfo, DbError> {
        let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        else {
            return Err(DbError::Url(format!(
                "`{}` is not a PostgreSQL URL: write postgres://USER@HOST:PORT/DBNAME (MySQL, MariaDB and SQLite are not supported yet)",
                redact(url)
            )));
        };
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match main.find('/') {
            Some(i) => (&main[..i], &main[i..]),
            None => (main, ""),
        };
        let mut password = None;
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => match userinfo.split_once(':') {
                Some((user, pw)) => {
                    password = Some(Secret::new(percent_decode(pw)));
                    format!("{user}@{hostport}")
                }
                None => authority.to_owned(),
            },
            None => authority.to_owned(),
        };
        let mut password_file = None;
        let mut params = Vec::new();
        for p in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match p.split_once('=') {
                Some(("password", v)) => password = Some(Secret::new(percent_decode(v))),
                Some(("password_file", v)) => password_file = Some(percent_decode(v)),
                _ => params.push(p),
            }
        }
        let mut url = format!("postgres://{authority}{path}");
        if !params.is_empty() {
            url.push('?');
            url.push_str(&params.join("&"));
        }
        Ok(ConnInfo {
            url,
            password,
            password_file,
        })
    }

    /// The database name of the URL, if it names one.
    pub fn dbname(&self) -> Option<String> {
        let rest = self.url.strip_prefix("postgres://")?;
        let main = rest.split('?').next()?;
        let db = main.split_once('/')?.1;
        (!db.is_empty()).then(|| percent_decode(db))
    }
}

impl std::fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)?;
        if self.password.is_some() {
            f.write_str(" (password given)")?;
        }
        if let Some(p) = &self.password_file {
            write!(f, " (password in {p})")?;
        }
        Ok(())
    }
}

/// A URL as given, with any password replaced by `***`: for messages about URLs that could not
/// be parsed.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let end = out[start..]
            .find(['/', '?'])
            .map(|i| start + i)
            .unwrap_or(out.len());
        if let Some(at) = out[start..end].rfind('@') {
            let userinfo = &out[start..start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(start + colon + 1..start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some(("password", _)) => "password=***".to_owned(),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// `HOST:postgres://…` → (Some(HOST), URL); a bare URL → (None, URL).
pub fn split_host(s: &str) -> (Option<&str>, &str) {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(i) = s.find(scheme)
            && i > 1
            && s.as_bytes()[i - 1] == b':'
        {
            return (Some(&s[..i - 1]), &s[i..]);
        }
    }
    (None, s)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
