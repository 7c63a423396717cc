//! SQL on a host through the `mariadb` client (or `mysql` where only that is installed): a
//! [`Sql`] session for MariaDB and MySQL servers, run where the server can be
//! reached, so a server that listens only on its own loopback or socket is reached there.
//!
//! The password never appears on a command line, in the plan or in a message: a password
//! that came in a URL goes to the client's environment (`MYSQL_PWD`); a password file is read
//! on the host itself by a small shell wrapper into the same variable; otherwise the client's
//! own option files (`~/.my.cnf`) apply there.

use super::{MAX_REPLAY_ANSWER, Replayed, Session};
use crate::{ConnInfo, DbError, Sql};
use rehost_host::{CommandSpec, Host, Program};
use std::sync::atomic::AtomicBool;

/// Reads the password file named by `$0` (when it is not `-`) into `MYSQL_PWD`, then runs the
/// first client found with the arguments (no subshell: a fork per session less).
const WRAPPER: &str = "if [ \"$0\" != - ]; then MYSQL_PWD=$(head -n 1 -- \"$0\") || exit 2; export MYSQL_PWD; fi; \
command -v mariadb >/dev/null && exec mariadb \"$@\"; command -v mysql >/dev/null && exec mysql \"$@\"; \
echo 'mariadb: command not found' >&2; exit 127";

pub struct Mariadb<'h>(Session<'h>);

impl<'h> Mariadb<'h> {
    pub fn new(
        host: &'h dyn Host,
        show_host: bool,
        conn: ConnInfo,
        cancel: &'h AtomicBool,
    ) -> Self {
        Mariadb(Session {
            host,
            show_host,
            conn,
            cancel,
        })
    }

    fn spec(&self, statements: &[String]) -> Result<CommandSpec, DbError> {
        let mut script = String::new();
        for s in statements {
            script.push_str(s);
            script.push_str(";\n");
        }
        self.spec_with(
            &["--batch", "--skip-column-names", "--raw"],
            InDatabase::Own,
            script,
        )
    }

    /// The client run with `output` options, in `database`, running `script`.
    fn spec_with(
        &self,
        output: &[&str],
        database: InDatabase,
        script: String,
    ) -> Result<CommandSpec, DbError> {
        let Some(t) = self.0.conn.mysql() else {
            return Err(DbError::Url(format!(
                "`{}`: not a MariaDB/MySQL location",
                self.0.conn.url
            )));
        };
        let mut argv: Vec<String> = vec![
            "/bin/sh".into(),
            "-c".into(),
            WRAPPER.into(),
            self.0.password_file().unwrap_or_else(|| "-".into()),
        ];
        argv.extend(output.iter().map(|s| s.to_string()));
        argv.extend([
            "--default-character-set=utf8mb4".into(),
            "--connect-timeout=10".into(),
        ]);
        if let Some(u) = &t.user {
            argv.push(format!("--user={u}"));
        }
        if let Some(h) = &t.host {
            argv.push(format!("--host={h}"));
        }
        if let Some(p) = t.port {
            argv.push(format!("--port={p}"));
        }
        match &t.socket {
            Some(s) => argv.push(format!("--socket={s}")),
            None if t.port.is_some() => argv.push("--protocol=TCP".into()),
            None => {}
        }
        match database {
            InDatabase::Own => {
                if let Some(d) = &t.database {
                    argv.push(format!("--database={d}"));
                }
            }
            InDatabase::NoneSelected => {}
            InDatabase::Named(d) => argv.push(format!("--database={d}")),
        }
        argv.push("--execute".into());
        argv.push(script);
        let mut spec = CommandSpec::new(Program::Argv(argv));
        if let Some(pw) = &self.0.conn.password {
            spec.env.push(("MYSQL_PWD".into(), pw.expose().to_owned()));
        }
        Ok(spec)
    }
}

impl Sql for Mariadb<'_> {
    fn run(&self, statements: &[String]) -> Result<Vec<String>, DbError> {
        let spec = self.spec(statements)?;
        self.0
            .run(&spec, ("mariadb", "mariadb-client"))
            .map_err(|e| match e {
                // The client echoes the failing statement between dashes before its error: the
                // error is what matters.
                DbError::Query { target, message } => DbError::Query {
                    target,
                    message: match message.rfind("ERROR ") {
                        Some(i) => message[i..].to_owned(),
                        None => message,
                    },
                },
                e => e,
            })
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// The database a replayed statement runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDatabase<'a> {
    /// The location's own (the URL's path), or none where it names none.
    Own,
    /// None selected, as the logged client had none.
    NoneSelected,
    /// This one (given as an argument of its own: no quoting, nothing read as SQL).
    Named(&'a str),
}

/// MariaDB's error numbers below 2000 are the server's (1045: the login refused, which is
/// trouble reaching it, not an answer); 2000 and up are the client's (connection lost …).
fn is_server_error(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("ERROR ") else {
        return false;
    };
    let n: u32 = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or(u32::MAX);
    n < 2000 && n != 1045
}

impl Mariadb<'_> {
    /// Runs `statement` alone in a transaction that is rolled back — `START TRANSACTION READ
    /// ONLY` unless `write` — in `database`, with `max_statement_time` of `timeout_s` seconds.
    /// The client runs with `--binary-mode` (no client commands such as `\!`, `tee`, `source`
    /// in the text; `--sandbox` would add nothing to that, and clients before MariaDB 10.5.25
    /// and MySQL's do not know it); the statement is only ever one statement
    /// (rehost_compat refuses what another `sql_mode` would split). The answer comes as the
    /// client's XML, which tells NULL (`xsi:nil`) from the string `NULL` and keeps tabs and
    /// newlines in values; an answer without rows names no columns there. An error the
    /// server raised is [`Replayed::ServerError`] (`ERROR 1146 (42S02): …`, the client's
    /// `at line N` left out); one reaching the server is a [`DbError`].
    pub fn replay(
        &self,
        statement: &str,
        write: bool,
        database: InDatabase,
        timeout_s: u32,
    ) -> Result<Replayed, DbError> {
        let begin = if write {
            "START TRANSACTION"
        } else {
            "START TRANSACTION READ ONLY"
        };
        // The statement's own last line may be a `#` comment: the `;` goes on a line of its own.
        let script = format!(
            "SET SESSION max_statement_time = {timeout_s};\n{begin};\n{statement}\n;\nROLLBACK;\n"
        );
        let spec = self.spec_with(&["--xml", "--binary-mode", "--comments"], database, script)?;
        let super::ClientRun { out, err, code } =
            self.0
                .run_raw(&spec, ("mariadb", "mariadb-client"), MAX_REPLAY_ANSWER)?;
        if code == Some(1)
            && let Some(e) = err.iter().find(|l| is_server_error(l))
        {
            // `ERROR 1146 (42S02) at line 3: …`: the line is the script's, not the log's.
            let e = match (e.find(" at line "), e.find(": ")) {
                (Some(a), Some(c)) if a < c => format!("{}{}", &e[..a], &e[c..]),
                _ => e.clone(),
            };
            return Ok(Replayed::ServerError(e));
        }
        if code != Some(0) {
            let err: Vec<String> = match err.iter().find(|l| l.starts_with("ERROR ")) {
                Some(e) => vec![e.clone()],
                None => err,
            };
            return Err(DbError::Query {
                target: self.0.describe(),
                message: super::failure_message(&err, code, ("mariadb", "mariadb-client")),
            });
        }
        parse_xml(&out.join("\n")).map_err(|e| DbError::Answer {
            target: self.0.describe(),
            message: format!("the client's XML answer: {e}"),
        })
    }
}

/// The first result set of the client's `--xml` output: each `<row>`'s `<field name="…">`
/// values, `xsi:nil="true"` for NULL; the columns are the first row's field names.
fn parse_xml(text: &str) -> Result<Replayed, String> {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    let Some(start) = text.find("<resultset") else {
        return Ok(Replayed::Rows { columns, rows });
    };
    let body = &text[start..];
    let end = body
        .find("</resultset>")
        .ok_or("a result set is not closed")?;
    let mut rest = &body[..end];
    while let Some(r) = rest.find("<row>") {
        rest = &rest[r + 5..];
        let row_end = rest.find("</row>").ok_or("a row is not closed")?;
        let mut fields = &rest[..row_end];
        rest = &rest[row_end + 6..];
        let mut row = Vec::new();
        let mut names = Vec::new();
        while let Some(f) = fields.find("<field name=\"") {
            fields = &fields[f + 13..];
            let q = fields.find('"').ok_or("a field's name is not closed")?;
            names.push(unescape(&fields[..q])?);
            fields = &fields[q + 1..];
            if let Some(after) = fields.strip_prefix(" xsi:nil=\"true\" />") {
                row.push(None);
                fields = after;
            } else if let Some(after) = fields.strip_prefix('>') {
                let close = after.find("</field>").ok_or("a field is not closed")?;
                row.push(Some(unescape(&after[..close])?));
                fields = &after[close + 8..];
            } else {
                return Err("a field is neither a value nor NULL".into());
            }
        }
        if rows.is_empty() {
            columns = names;
        }
        rows.push(row);
    }
    Ok(Replayed::Rows { columns, rows })
}

/// XML's escapes as the client writes them (`&lt;` `&gt;` `&amp;` `&quot;`, `&#N;`).
fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('&') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let semi = rest
            .find(';')
            .filter(|&n| n <= 10)
            .ok_or("an `&` that starts no entity")?;
        let name = &rest[1..semi];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            n => n
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| n.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    format!(
                        "an unknown entity `&{}`",
                        n.chars().take(12).collect::<String>()
                    )
                })?,
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NULL and the string `NULL` apart, tabs, newlines and markup kept, the first row's names
    /// the columns; an empty result names none.
    #[test]
    fn the_clients_xml_answer_keeps_nulls_and_values_whole() {
        let xml = "<?xml version=\"1.0\"?>\n\n<resultset statement=\"select * from t\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n  <row>\n\t<field name=\"x\">1</field>\n\t<field name=\"s\">NULL</field>\n  </row>\n\n  <row>\n\t<field name=\"x\">2</field>\n\t<field name=\"s\" xsi:nil=\"true\" />\n  </row>\n\n  <row>\n\t<field name=\"x\">3</field>\n\t<field name=\"s\">tab\there\nnl &lt;&amp;&gt;&quot;</field>\n  </row>\n</resultset>";
        assert_eq!(
            parse_xml(xml).unwrap(),
            Replayed::Rows {
                columns: vec!["x".into(), "s".into()],
                rows: vec![
                    vec![Some("1".into()), Some("NULL".into())],
                    vec![Some("2".into()), None],
                    vec![Some("3".into()), Some("tab\there\nnl <&>\"".into())],
                ]
            }
        );
        assert_eq!(
            parse_xml("<resultset statement=\"x\"></resultset>").unwrap(),
            Replayed::Rows {
                columns: vec![],
                rows: vec![]
            }
        );
        assert!(parse_xml("<resultset><row><field name=\"a\">1").is_err());
        assert!(unescape("&bogus;").is_err());
        assert!(is_server_error(
            "ERROR 1146 (42S02) at line 3: Table 't' doesn't exist"
        ));
        assert!(!is_server_error("ERROR 2003 (HY000): Can't connect"));
        assert!(!is_server_error("ERROR 1045 (28000): Access denied"));
    }
}
