//! `[[environments.NAME.load]]`: the load a rehearsal applies (issue 24).

use super::{Reader, Tbl};
use crate::model::*;

impl Reader {
    /// `[[environments.NAME.load]]`: the loads a rehearsal applies.
    pub(super) fn loads(&mut self, env: &Tbl, name: &str) -> Vec<Load> {
        let mut out = Vec::new();
        for mut t in self.array_of_tables(env, "load") {
            t.what = format!(
                "[[environments.{name}.load]] {}",
                t.what.rsplit(' ').next().unwrap_or("")
            );
            self.check_keys(
                &t,
                &[
                    "id",
                    "start_before",
                    "stop_after",
                    "command",
                    "host",
                    "writes",
                    "database",
                    "service",
                    "port",
                    "path",
                ],
            );
            let id = self.required_str(&t, "id");
            let start_before = self.required_str(&t, "start_before");
            let stop_after = self.required_str(&t, "stop_after");
            let command = self.str(&t, "command");
            let host = self.str(&t, "host");
            let writes = self.str(&t, "writes");
            let database = self.str(&t, "database");
            let service = self.str(&t, "service");
            let port = self.port(&t, "port");
            let path = self.str(&t, "path");
            if writes.as_deref() != Some("http") {
                for key in ["service", "port", "path"] {
                    if t.get(key).is_some() {
                        self.err(
                            "value",
                            t.span_of(key),
                            format!("{}: `{key}` goes with `writes = \"http\"`", t.what),
                        );
                    }
                }
            }
            let what = match (command, writes) {
                (Some(command), None) => {
                    if database.is_some() {
                        self.err(
                            "value",
                            t.span_of("database"),
                            format!(
                                "{}: `database` goes with `writes`, not with `command`",
                                t.what
                            ),
                        );
                    }
                    if command.trim().is_empty() {
                        self.err(
                            "empty",
                            t.span_of("command"),
                            format!("{} key `command` is empty", t.what),
                        );
                        None
                    } else {
                        Some(LoadKind::Command { command, host })
                    }
                }
                (None, Some(engine)) if engine == "http" => {
                    for key in ["host", "database"] {
                        if t.get(key).is_some() {
                            self.err(
                                "value",
                                t.span_of(key),
                                format!("{}: `{key}` does not go with `writes = \"http\"`; the HTTP write load writes to `service`'s old host and checks its new one", t.what),
                            );
                        }
                    }
                    let path = path.unwrap_or_else(|| "/rehost-writes".into());
                    if !path.starts_with('/')
                        || path.ends_with('/')
                        || path
                            .bytes()
                            .any(|b| !b.is_ascii_graphic() || b == b'?' || b == b'#')
                    {
                        self.err(
                            "value",
                            t.span_of("path"),
                            format!("{}: `path` must be an absolute URL path without a trailing `/`, query, spaces or control characters (the load sends `PUT PATH/ID`), not {path:?}", t.what),
                        );
                    }
                    match service {
                        Some(service) => Some(LoadKind::HttpWrites {
                            service,
                            port,
                            path,
                        }),
                        None => {
                            self.err(
                                "missing-key",
                                t.span.clone(),
                                format!("{} writes over HTTP: it needs `service` (a [[services]] id with `new_host`)", t.what),
                            );
                            None
                        }
                    }
                }
                (None, Some(engine)) => {
                    if host.is_some() {
                        self.err(
                            "value",
                            t.span_of("host"),
                            format!("{}: `host` goes with `command`; the write load connects as the database's old side says", t.what),
                        );
                    }
                    match database {
                        Some(database) => Some(LoadKind::Writes { engine, database }),
                        None => {
                            self.err(
                                "missing-key",
                                t.span.clone(),
                                format!("{} writes to a database: it needs `database` (a [[databases]] id)", t.what),
                            );
                            None
                        }
                    }
                }
                (Some(_), Some(_)) => {
                    self.err(
                        "value",
                        t.span_of("writes"),
                        format!("{}: write either `command` or `writes`, not both", t.what),
                    );
                    None
                }
                (None, None) => {
                    self.err(
                        "missing-key",
                        t.span.clone(),
                        format!("{} needs `command = \"...\"`, `writes = \"postgresql\"` with `database`, or `writes = \"http\"` with `service`", t.what),
                    );
                    None
                }
            };
            if let (Some(id), Some(start_before), Some(stop_after), Some(what)) =
                (id, start_before, stop_after, what)
            {
                out.push(Load {
                    id,
                    start_span: t.span_of("start_before"),
                    stop_span: t.span_of("stop_after"),
                    start_before,
                    stop_after,
                    what,
                    span: t.span.clone(),
                });
            }
        }
        out
    }
}
