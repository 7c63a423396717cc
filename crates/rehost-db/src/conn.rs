//! Connection strings: a `postgres://`, `mysql://` or `sqlite:` URL whose password (if any) is taken out at once and
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

/// The database engine a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// `postgres://`, `postgresql://`
    Postgres,
    /// `mysql://`, `mariadb://` (MariaDB and MySQL)
    Mysql,
    /// `sqlite:PATH`
    Sqlite,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MariaDB/MySQL",
            Engine::Sqlite => "SQLite",
        }
    }
}

/// Where and how to connect: a URL without its password, the password if the URL had one,
/// and a file on the connecting host that holds the password (its first line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub engine: Engine,
    /// `postgres://user@host:port/db?params`, `mysql://user@host:port/db?params` or
    /// `sqlite:PATH`; never with a password.
    pub url: String,
    pub password: Option<Secret>,
    /// A file on the host that connects, whose first line is the password.
    pub password_file: Option<String>,
}

/// The parts of a `mysql://` URL, for the `mariadb` client's options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlTarget {
    pub user: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    /// `?socket=/run/mysqld/mysqld.sock`
    pub socket: Option<String>,
}

impl ConnInfo {
    /// Parses a `postgres://` (or `postgresql://`), `mysql://` (or `mariadb://`) URL or a
    /// `sqlite:PATH`. A password in the user part (`user:pw@`) or as a `password=` parameter
    /// is moved into [`ConnInfo::password`]; `password_file=PATH` names a file on the
    /// connecting host.
    pub fn parse(url: &str) -> Result<ConnInfo, DbError> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(DbError::Url(
                    "`sqlite:` names no file: write sqlite:/path/to/file.db".into(),
                ));
            }
            return Ok(ConnInfo {
                engine: Engine::Sqlite,
                url: format!("sqlite:{path}"),
                password: None,
                password_file: None,
            });
        }
        let (engine, scheme, rest) = if let Some(r) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            (Engine::Postgres, "postgres://", r)
        } else if let Some(r) = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
        {
            (Engine::Mysql, "mysql://", r)
        } else {
            return Err(DbError::Url(format!(
                "`{}` is not a database URL: write postgres://USER@HOST:PORT/DBNAME, mysql://USER@HOST:PORT/DBNAME or sqlite:PATH",
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
        let mut url = format!("{scheme}{authority}{path}");
        if !params.is_empty() {
            url.push('?');
            url.push_str(&params.join("&"));
        }
        let conn = ConnInfo {
            engine,
            url,
            password,
            password_file,
        };
        if engine == Engine::Mysql {
            conn.mysql()?;
        }
        Ok(conn)
    }

    /// The database name of the URL, if it names one.
    pub fn dbname(&self) -> Option<String> {
        let rest = self
            .url
            .strip_prefix("postgres://")
            .or_else(|| self.url.strip_prefix("mysql://"))?;
        let main = rest.split('?').next()?;
        let db = main.split_once('/')?.1;
        (!db.is_empty()).then(|| percent_decode(db))
    }

    /// The file of a `sqlite:PATH`.
    pub fn sqlite_path(&self) -> Option<&str> {
        self.url.strip_prefix("sqlite:")
    }

    /// The parts of a `mysql://USER@HOST:PORT/DB?socket=PATH` URL (`host` and `port` also as
    /// parameters). Anything else in the query is refused: the client would not see it.
    pub fn mysql(&self) -> Result<MysqlTarget, DbError> {
        let bad = |m: String| DbError::Url(format!("`{}`: {m}", self.url));
        let Some(rest) = self.url.strip_prefix("mysql://") else {
            return Err(bad("not a mysql:// URL".into()));
        };
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, db) = main.split_once('/').unwrap_or((main, ""));
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decode(u)), h),
            None => (None, authority),
        };
        let mut t = MysqlTarget {
            user: user.filter(|u| !u.is_empty()),
            database: (!db.is_empty()).then(|| percent_decode(db)),
            ..Default::default()
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad(format!("`{p}` is not a TCP port")))
        };
        let (host, p) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, Some(p)),
            _ => (hostport, None),
        };
        if !host.is_empty() {
            t.host = Some(percent_decode(
                host.trim_start_matches('[').trim_end_matches(']'),
            ));
        }
        if let Some(p) = p {
            t.port = Some(port(p)?);
        }
        for p in query.split('&').filter(|p| !p.is_empty()) {
            match p.split_once('=') {
                Some(("socket", v)) => t.socket = Some(percent_decode(v)),
                Some(("host", v)) => t.host = Some(percent_decode(v)),
                Some(("port", v)) => t.port = Some(port(v)?),
                Some(("user", v)) => t.user = Some(percent_decode(v)),
                _ => {
                    return Err(bad(format!(
                        "unknown parameter `{p}`: a mysql:// URL takes socket=, host=, port=, user=, password_file="
                    )));
                }
            }
        }
        for v in [&t.user, &t.host, &t.database, &t.socket]
            .into_iter()
            .flatten()
        {
            if v.starts_with('-') || v.contains(['\n', '\0']) {
                return Err(bad(format!("`{v}` cannot be handed to the client")));
            }
        }
        Ok(t)
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

/// `HOST:postgres://…` (or `HOST:mysql://…`, `HOST:sqlite:PATH`) → (Some(HOST), URL); a bare
/// URL → (None, URL).
pub fn split_host(s: &str) -> (Option<&str>, &str) {
    for scheme in [
        "postgres://",
        "postgresql://",
        "mysql://",
        "mariadb://",
        "sqlite:",
    ] {
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
