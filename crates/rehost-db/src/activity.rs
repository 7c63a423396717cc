//! The database server's own view of who is connected: PostgreSQL's `pg_stat_activity`,
//! MariaDB/MySQL's `information_schema.PROCESSLIST` (with the age of each session's open InnoDB
//! transaction from `INNODB_TRX`). Pure: the SQL, and the rows read back through [`Sql`].
//! Shown by `rehost conns list --db`, joined there to the kernel's TCP listing by the client's
//! address and port.

use crate::{DbError, Engine, Sql};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// How many sessions one listing holds at most; more are counted as `truncated`.
pub const MAX_SESSIONS: usize = 10_000;

/// One client session as the server sees it. Every text is the server's, untrusted: escape it
/// before it reaches a terminal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The backend's pid (PostgreSQL) or the connection id (MariaDB/MySQL).
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// PostgreSQL's `application_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The client's address and port; absent for a Unix-socket client (and, on PostgreSQL,
    /// for another user's session unless the login may see them: `pg_read_all_stats`). A
    /// MariaDB server that resolves names gives the port and a name (`client_host`) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    /// MariaDB's `HOST` as the server wrote it (`localhost` for a socket client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_host: Option<String>,
    /// PostgreSQL's `state` (`active`, `idle`, `idle in transaction`…) or MariaDB's `STATE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// MariaDB's `COMMAND` (`Sleep`, `Query`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Seconds since the open transaction began (`xact_start`; InnoDB's `trx_started`);
    /// absent when no transaction is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_age_s: Option<f64>,
    /// Seconds since the session connected (`backend_start`); MariaDB does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_s: Option<f64>,
    /// Seconds in the current state (PostgreSQL: since `state_change`; MariaDB: `TIME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_s: Option<f64>,
}

/// What [`sessions`] read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Ordered by id; the session that read them is left out.
    pub sessions: Vec<Session>,
    /// More than [`MAX_SESSIONS`] sessions were there; the first are listed.
    pub truncated: bool,
}

const POSTGRES: &str = "SELECT json_build_object(\
    'id', pid, 'user', usename, 'application', application_name, 'database', datname, \
    'client_addr', host(client_addr), \
    'client_port', CASE WHEN client_port > 0 THEN client_port END, 'state', state, \
    'transaction_age_s', extract(epoch FROM clock_timestamp() - xact_start), \
    'connected_s', extract(epoch FROM clock_timestamp() - backend_start), \
    'state_s', extract(epoch FROM clock_timestamp() - state_change))::text \
    FROM pg_stat_activity \
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
    ORDER BY pid LIMIT ";

const MYSQL: &str = "SELECT JSON_OBJECT(\
    'id', p.ID, 'user', p.USER, 'client_host', p.HOST, 'database', p.DB, \
    'command', p.COMMAND, 'state', p.STATE, 'state_s', p.TIME, \
    'transaction_age_s', (SELECT TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1e6 \
        FROM information_schema.INNODB_TRX t WHERE t.trx_mysql_thread_id = p.ID LIMIT 1)) \
    FROM information_schema.PROCESSLIST p \
    WHERE p.ID <> CONNECTION_ID() AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump') \
    ORDER BY p.ID LIMIT ";

/// The client sessions of the server `sql` reaches, but its own, at most [`MAX_SESSIONS`].
/// SQLite has no server: an error.
pub fn sessions(engine: Engine, sql: &dyn Sql) -> Result<Activity, DbError> {
    let query = match engine {
        Engine::Postgres => POSTGRES,
        Engine::Mysql => MYSQL,
        Engine::Sqlite => {
            return Err(DbError::Url(format!(
                "{} is an SQLite file: it has no server, so no sessions to list",
                sql.describe()
            )));
        }
    };
    let rows = sql.run(&[format!("{query}{}", MAX_SESSIONS + 1)])?;
    let mut sessions = Vec::with_capacity(rows.len().min(MAX_SESSIONS));
    for row in rows.iter().take(MAX_SESSIONS) {
        sessions.push(read_row(row).map_err(|message| DbError::Answer {
            target: sql.describe(),
            message,
        })?);
    }
    Ok(Activity {
        sessions,
        truncated: rows.len() > MAX_SESSIONS,
    })
}

/// One row: a JSON object with the fields of [`Session`] (MariaDB's `client_host` split into
/// address and port where it is `ADDR:PORT`, the port alone from `NAME:PORT`).
fn read_row(row: &str) -> Result<Session, String> {
    let mut s: Session =
        serde_json::from_str(row).map_err(|e| format!("a session row does not read ({e})"))?;
    if s.client_port.is_none()
        && let Some(h) = &s.client_host
        && let Some((a, p)) = h.rsplit_once(':')
        && let Ok(p) = p.parse::<u16>()
    {
        // `ADDR:PORT`, `[V6]:PORT`, or `NAME:PORT` where the server resolves names.
        s.client_port = Some(p);
        s.client_addr = a.trim_start_matches('[').trim_end_matches(']').parse().ok();
    }
    s.client_addr = s.client_addr.map(|a| a.to_canonical());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rows(Vec<String>);
    impl Sql for Rows {
        fn run(&self, statements: &[String]) -> Result<Vec<String>, DbError> {
            assert_eq!(statements.len(), 1);
            assert!(statements[0].ends_with(&format!("LIMIT {}", MAX_SESSIONS + 1)));
            Ok(self.0.clone())
        }
        fn describe(&self) -> String {
            "test".into()
        }
    }

    #[test]
    fn postgres_rows_read_with_their_transaction_age() {
        let rows = Rows(vec![
            r#"{"id" : 41, "user" : "app", "application" : "billing", "database" : "db", "client_addr" : "127.0.0.1", "client_port" : 50512, "state" : "idle in transaction", "transaction_age_s" : 3.25, "connected_s" : 4.5, "state_s" : 3.2}"#.into(),
            r#"{"id" : 42, "user" : "app", "application" : "", "database" : "db", "client_addr" : null, "client_port" : null, "state" : "idle", "transaction_age_s" : null, "connected_s" : 1, "state_s" : 1}"#.into(),
        ]);
        let a = sessions(Engine::Postgres, &rows).unwrap();
        assert_eq!(a.sessions.len(), 2);
        assert_eq!(a.sessions[0].transaction_age_s, Some(3.25));
        assert_eq!(a.sessions[0].client_port, Some(50512));
        assert_eq!(a.sessions[1].client_port, None);
        assert_eq!(a.sessions[1].transaction_age_s, None);
    }

    #[test]
    fn mariadb_hosts_split_into_address_and_port() {
        let rows = Rows(vec![
            r#"{"id": 7, "user": "root", "client_host": "127.0.0.1:40112", "database": null, "command": "Sleep", "state": "", "state_s": 12, "transaction_age_s": 2.000001}"#.into(),
            r#"{"id": 8, "user": "root", "client_host": "localhost", "database": "x", "command": "Query", "state": "Sending data", "state_s": 0, "transaction_age_s": null}"#.into(),
            r#"{"id": 9, "user": "app", "client_host": "app01.example:40113", "command": "Sleep", "state_s": 3}"#.into(),
            r#"{"id": 10, "user": "app", "client_host": "::1:40114", "command": "Sleep", "state_s": 3}"#.into(),
        ]);
        let a = sessions(Engine::Mysql, &rows).unwrap();
        assert_eq!(
            a.sessions[0].client_addr,
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(a.sessions[0].client_port, Some(40112));
        assert_eq!(a.sessions[1].client_addr, None);
        assert_eq!(a.sessions[1].client_host.as_deref(), Some("localhost"));
        assert_eq!(
            (a.sessions[1].client_addr, a.sessions[1].client_port),
            (None, None)
        );
        assert_eq!(
            (a.sessions[2].client_addr, a.sessions[2].client_port),
            (None, Some(40113))
        );
        assert_eq!(a.sessions[3].client_addr, Some("::1".parse().unwrap()));
        assert_eq!(a.sessions[3].client_port, Some(40114));
    }

    #[test]
    fn a_row_that_does_not_read_is_an_error_naming_the_server() {
        let e = sessions(Engine::Postgres, &Rows(vec!["{not json".into()])).unwrap_err();
        assert!(e.to_string().contains("test"), "{e}");
    }
}
