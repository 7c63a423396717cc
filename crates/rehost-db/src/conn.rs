//! Database locations, typed and parsed once: a `postgres://`, `mysql://` or `sqlite:` URL from
//! the command line ([`ConnInfo::parse`]), or a plan's database side ([`ConnInfo::of`]). A
//! password in a URL is taken out at once and kept in a [`Secret`], so that what is displayed,
//! journaled or reported never holds it.

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

/// The engine a location names: the plan's own type ([`rehost_plan::Engine`]), so that a
/// plan's database and a URL on the command line are one kind of thing. A URL's scheme is
/// parsed into it by [`ConnInfo::parse`], the plan's `engine` key when the plan is read.
pub use rehost_plan::Engine;

/// Where and how to connect, parsed once (from a URL by [`ConnInfo::parse`], from a plan's
/// database by [`ConnInfo::of`]): a URL without its password for messages (and for psql, which
/// takes it as is), what each client needs of it ([`Target`]), the password if the URL had
/// one, and a file on the connecting host that holds the password (its first line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// `postgres://user@host:port/db?params`, `mysql://user@host:port/db?params` or
    /// `sqlite:PATH`; never with a password.
    pub url: String,
    /// The engine and what its client takes.
    pub target: Target,
    pub password: Option<Secret>,
    /// A file on the host that connects, whose first line is the password.
    pub password_file: Option<String>,
}

/// What each engine's client connects with, taken from the location once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// psql takes [`ConnInfo::url`] itself; the database it names, for messages and tests.
    Postgres { database: Option<String> },
    /// The `mariadb` client's options.
    Mysql(MysqlTarget),
    /// The file, as written: the host resolves it (under its root) when the client opens it.
    Sqlite { path: String },
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

const NO_SQLITE_FILE: &str = "`sqlite:` names no file: write sqlite:/path/to/file.db";

impl ConnInfo {
    /// Parses a `postgres://` (or `postgresql://`), `mysql://` (or `mariadb://`) URL or a
    /// `sqlite:PATH`. A password in the user part (`user:pw@`) or as a `password=` parameter
    /// is moved into [`ConnInfo::password`]; `password_file=PATH` names a file on the
    /// connecting host.
    pub fn parse(url: &str) -> Result<ConnInfo, DbError> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(DbError::Url(NO_SQLITE_FILE.into()));
            }
            return Ok(ConnInfo {
                url: format!("sqlite:{path}"),
                target: Target::Sqlite {
                    path: path.to_owned(),
                },
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
        let target = match engine {
            Engine::Mysql => Target::Mysql(mysql_target(&url, &authority, path, &params)?),
            _ => Target::Postgres {
                database: path
                    .strip_prefix('/')
                    .filter(|d| !d.is_empty())
                    .map(percent_decode),
            },
        };
        Ok(ConnInfo {
            url,
            target,
            password,
            password_file,
        })
    }

    /// A plan database's side (`to`: the new one) as that side's host connects to it: on the
    /// host's loopback at the side's port, or through `socket`; `user`; the password in
    /// `password_file` on that host; for SQLite, `database` is the file's path there. Built
    /// from the plan's typed fields, not from a URL; the URL is only what messages show (and
    /// what psql takes). `None` engine ([`Database::kind`]): an error naming the engine.
    ///
    /// [`Database::kind`]: rehost_plan::Database::kind
    pub fn of(db: &rehost_plan::Database, to: bool) -> Result<ConnInfo, DbError> {
        let Some(engine) = db.kind else {
            return Err(DbError::Url(format!(
                "database `{}` is a {} database: verify-db compares PostgreSQL, MariaDB/MySQL and SQLite",
                db.id, db.engine
            )));
        };
        let port = db.port_on(to);
        let database = db.name_on(to);
        let (url, target) = match engine {
            Engine::Sqlite => {
                let path = database.unwrap_or_default();
                if path.is_empty() {
                    return Err(DbError::Url(NO_SQLITE_FILE.into()));
                }
                (
                    format!("sqlite:{path}"),
                    Target::Sqlite {
                        path: path.to_owned(),
                    },
                )
            }
            Engine::Mysql => {
                let mut params = Vec::new();
                match &db.socket {
                    Some(s) => params.push(format!("socket={s}")),
                    None => params.push("host=127.0.0.1".to_owned()),
                }
                if let Some(p) = port {
                    params.push(format!("port={p}"));
                }
                if let Some(u) = &db.user {
                    params.push(format!("user={u}"));
                }
                let url = format!(
                    "mysql:///{}?{}",
                    database.unwrap_or_default(),
                    params.join("&")
                );
                let t = MysqlTarget {
                    user: db.user.clone(),
                    host: db.socket.is_none().then(|| "127.0.0.1".to_owned()),
                    port,
                    database: database.filter(|d| !d.is_empty()).map(str::to_owned),
                    socket: db.socket.clone(),
                };
                check_mysql(&url, &t)?;
                (url, Target::Mysql(t))
            }
            Engine::Postgres => {
                let database = database.unwrap_or("postgres");
                let mut params = vec![format!(
                    "host={}",
                    db.socket.as_deref().unwrap_or("127.0.0.1")
                )];
                if let Some(p) = port {
                    params.push(format!("port={p}"));
                }
                if let Some(u) = &db.user {
                    params.push(format!("user={u}"));
                }
                (
                    format!("postgres:///{database}?{}", params.join("&")),
                    Target::Postgres {
                        database: (!database.is_empty()).then(|| database.to_owned()),
                    },
                )
            }
        };
        Ok(ConnInfo {
            url,
            target,
            password: None,
            password_file: db.password_file.clone(),
        })
    }

    /// The engine of the location.
    pub fn engine(&self) -> Engine {
        match self.target {
            Target::Postgres { .. } => Engine::Postgres,
            Target::Mysql(_) => Engine::Mysql,
            Target::Sqlite { .. } => Engine::Sqlite,
        }
    }

    /// The database name of the location, if it names one.
    pub fn dbname(&self) -> Option<&str> {
        match &self.target {
            Target::Postgres { database } => database.as_deref(),
            Target::Mysql(t) => t.database.as_deref(),
            Target::Sqlite { .. } => None,
        }
    }

    /// The file of a `sqlite:PATH`.
    pub fn sqlite_path(&self) -> Option<&str> {
        match &self.target {
            Target::Sqlite { path } => Some(path),
            _ => None,
        }
    }

    /// The `mariadb` client's options of a `mysql://` location.
    pub fn mysql(&self) -> Option<&MysqlTarget> {
        match &self.target {
            Target::Mysql(t) => Some(t),
            _ => None,
        }
    }
}

/// The parts of a `mysql://USER@HOST:PORT/DB?socket=PATH` URL (`host` and `port` also as
/// parameters), from its authority, path and parameters (the password ones taken out). Anything
/// else in the query is refused: the client would not see it.
fn mysql_target(
    url: &str,
    authority: &str,
    path: &str,
    params: &[&str],
) -> Result<MysqlTarget, DbError> {
    let bad = |m: String| DbError::Url(format!("`{url}`: {m}"));
    let db = path.strip_prefix('/').unwrap_or(path);
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
    for p in params {
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
    check_mysql(url, &t)?;
    Ok(t)
}

/// What the `mariadb` client would take for an option of its own is refused.
fn check_mysql(url: &str, t: &MysqlTarget) -> Result<(), DbError> {
    for v in [&t.user, &t.host, &t.database, &t.socket]
        .into_iter()
        .flatten()
    {
        if v.starts_with('-') || v.contains(['\n', '\0']) {
            return Err(DbError::Url(format!(
                "`{url}`: `{v}` cannot be handed to the client"
            )));
        }
    }
    Ok(())
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
