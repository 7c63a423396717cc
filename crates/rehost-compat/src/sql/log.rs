//! The statements of a PostgreSQL server log, read as a stream: the `stderr` format
//! (`log_statement = 'all'`: `LOG:  statement: …`, `LOG:  execute NAME: …` with its
//! `DETAIL:  parameters: …`; `log_min_duration_statement`'s `duration: … statement: …` too),
//! `csvlog` and `jsonlog`. A statement's later lines are the lines that start with a tab (the
//! stderr format indents them so); in csvlog they are inside the quoted field.
//!
//! Bounded: a line or record over [`MAX_ENTRY`] is skipped with an error naming its line, read
//! to its end without keeping it; text that is not UTF-8 is an error for that entry. Nothing a
//! log holds can panic the reader: garbage is lines that hold no statement, or errors.

use std::io::BufRead;

/// The longest statement (with its parameters) read: longer ones are skipped, named.
pub const MAX_ENTRY: usize = 1 << 20;

/// The log formats PostgreSQL writes, and MariaDB's general log ([`super::general_log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Stderr,
    Csv,
    Json,
    MariadbGeneral,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "stderr" => Some(Format::Stderr),
            "csvlog" | "csv" => Some(Format::Csv),
            "jsonlog" | "json" => Some(Format::Json),
            "mariadb-general" | "mysql-general" => Some(Format::MariadbGeneral),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Stderr => "stderr",
            Format::Csv => "csvlog",
            Format::Json => "jsonlog",
            Format::MariadbGeneral => "mariadb-general",
        }
    }

    /// The server whose rules read the statements.
    pub fn dialect(self) -> super::lex::Dialect {
        match self {
            Format::MariadbGeneral => super::lex::Dialect::Mariadb,
            _ => super::lex::Dialect::Postgres,
        }
    }

    /// The names `parse` takes, for messages.
    pub const NAMES: &'static str = "stderr, csvlog, jsonlog or mariadb-general";

    /// The format of a log that starts with `head`: JSON lines start with `{`, csvlog lines with
    /// a time and a comma, a MariaDB general log with its header or an entry; anything else is
    /// read as stderr.
    pub fn detect(head: &[u8]) -> Format {
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        if super::general_log::detect(first.strip_suffix(b"\r").unwrap_or(first)) {
            return Format::MariadbGeneral;
        }
        if first.first() == Some(&b'{') {
            return Format::Json;
        }
        // csvlog: `2026-12-07 07:00:00.123 UTC,"user",…`: a time, then a comma before any space
        // that is not part of the time.
        let looks_like_time = first.len() > 20
            && first[..4].iter().all(u8::is_ascii_digit)
            && first[4] == b'-'
            && first[10] == b' ';
        if looks_like_time
            && let Some(comma) = first.iter().position(|&b| b == b',')
            && first[..comma].iter().filter(|&&b| b == b' ').count() <= 2
            && (first[comma..].starts_with(b",\"") || first[comma..].starts_with(b",,"))
        {
            return Format::Csv;
        }
        Format::Stderr
    }
}

/// The database a logged statement ran in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Database {
    /// The log does not say (PostgreSQL's): replayed in the URL's database.
    #[default]
    NotTracked,
    /// Its connection began before the log did: replayed in the URL's database, counted.
    Unknown,
    /// The client had selected none: replayed without one.
    NoneSelected,
    Named(String),
}

/// One statement as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The line of the log it starts on (1-based).
    pub line: u64,
    /// The statement text, parameters bound; or why it cannot be replayed.
    pub text: Result<String, String>,
    /// The database it ran in, where the log shows it.
    pub database: Database,
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `cap` bytes: `Ok(None)` at
/// the end, `Ok(Some(true))` when the line was longer (the rest is read and dropped).
fn read_line_capped(
    r: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut over = false;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(over));
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let room = cap.saturating_sub(buf.len());
        if part.len() > room {
            over = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(over));
        }
    }
}

/// What a log message is, once its prefix is gone.
enum Message {
    Statement(String),
    /// An extended-protocol execution; its parameters come in a DETAIL.
    Execute(String),
    Other,
}

/// The message after `statement: `, `execute NAME: ` or `duration: N ms  statement: `.
fn message(m: &str) -> Message {
    let m = match m.strip_prefix("duration: ") {
        Some(rest) => match rest.find(" ms  ") {
            Some(i) => &rest[i + 5..],
            None => return Message::Other,
        },
        None => m,
    };
    if let Some(s) = m.strip_prefix("statement: ") {
        return Message::Statement(s.to_owned());
    }
    if let Some(rest) = m.strip_prefix("execute ")
        && let Some(i) = rest.find(": ")
    {
        return Message::Execute(rest[i + 2..].to_owned());
    }
    Message::Other
}

/// An entry being read (stderr format: until the next line that does not start with a tab).
struct Pending {
    line: u64,
    text: String,
    execute: bool,
    params: Option<String>,
    /// Appending to the parameters (a DETAIL's own continuation lines) rather than the text.
    in_params: bool,
    error: Option<String>,
}

impl Pending {
    fn finish(self) -> Logged {
        let text = match self.error {
            Some(e) => Err(e),
            None if self.execute => match self.params {
                Some(p) => {
                    super::lex::parameters(&p).and_then(|v| super::lex::bind(&self.text, &v))
                }
                None if super::lex::tokens(&self.text)
                    .map(|t| t.iter().any(|t| t.kind == super::lex::Tok::Param))
                    .unwrap_or(false) =>
                {
                    Err("its parameters are not in the log (log_parameter_max_length = 0?)".into())
                }
                None => Ok(self.text),
            },
            None => Ok(self.text),
        };
        Logged {
            line: self.line,
            text,
            database: Database::NotTracked,
        }
    }
}

/// The statements of a log, in order.
pub struct Reader<R> {
    r: R,
    format: Format,
    line: u64,
    buf: Vec<u8>,
    pending: Option<Pending>,
    /// A finished entry to hand out before reading on.
    ready: std::collections::VecDeque<Logged>,
    done: bool,
    /// The error that ended reading (the file could not be read).
    pub io_error: Option<String>,
    /// MariaDB: each connection's database.
    connections: super::general_log::Connections,
    /// MariaDB: the entry being read (`Query`/`Execute`) and its connection.
    general: Option<(Pending, u64)>,
}

impl<R: BufRead> Reader<R> {
    pub fn new(r: R, format: Format) -> Self {
        Reader {
            r,
            format,
            line: 0,
            buf: Vec::new(),
            pending: None,
            ready: Default::default(),
            done: false,
            io_error: None,
            connections: Default::default(),
            general: None,
        }
    }

    fn line(&mut self) -> Option<bool> {
        match read_line_capped(&mut self.r, &mut self.buf, MAX_ENTRY) {
            Ok(Some(over)) => {
                self.line += 1;
                Some(over)
            }
            Ok(None) => None,
            Err(e) => {
                self.io_error = Some(format!("after line {}: {e}", self.line));
                None
            }
        }
    }

    fn stderr_step(&mut self) {
        let Some(over) = self.line() else {
            self.done = true;
            if let Some(p) = self.pending.take() {
                self.ready.push_back(p.finish());
            }
            return;
        };
        if self.buf.first() == Some(&b'\t') {
            let Some(p) = self.pending.as_mut() else {
                return;
            };
            if p.error.is_some() {
                return;
            }
            let add = std::str::from_utf8(&self.buf[1..]);
            let target = if p.in_params {
                p.params.get_or_insert_default()
            } else {
                &mut p.text
            };
            match add {
                _ if over || target.len() + self.buf.len() > MAX_ENTRY => {
                    p.error = Some(format!("longer than {} KiB: not read", MAX_ENTRY >> 10));
                }
                Ok(s) => {
                    target.push('\n');
                    target.push_str(s);
                }
                Err(_) => p.error = Some(format!("line {} is not UTF-8", self.line)),
            }
            return;
        }
        let line_no = self.line;
        if over {
            if let Some(p) = self.pending.take() {
                self.ready.push_back(p.finish());
            }
            if self.buf.windows(6).any(|w| w == b"LOG:  ") {
                self.ready.push_back(Logged {
                    line: line_no,
                    database: Database::NotTracked,
                    text: Err(format!(
                        "the line is longer than {} KiB: not read",
                        MAX_ENTRY >> 10
                    )),
                });
            }
            return;
        }
        let Ok(text) = std::str::from_utf8(&self.buf) else {
            if let Some(p) = self.pending.take() {
                self.ready.push_back(p.finish());
            }
            if self.buf.windows(6).any(|w| w == b"LOG:  ") {
                self.ready.push_back(Logged {
                    line: line_no,
                    database: Database::NotTracked,
                    text: Err("the line is not UTF-8".into()),
                });
            }
            return;
        };
        // A DETAIL with the parameters of the execute just read.
        if let Some(i) = text.find("DETAIL:  parameters: ")
            && let Some(p) = self
                .pending
                .as_mut()
                .filter(|p| p.execute && p.params.is_none())
        {
            p.params = Some(text[i + 9..].to_owned());
            p.in_params = true;
            return;
        }
        if let Some(p) = self.pending.take() {
            self.ready.push_back(p.finish());
        }
        let Some(i) = text.find("LOG:  ") else {
            return;
        };
        let (text, execute) = match message(&text[i + 6..]) {
            Message::Statement(s) => (s, false),
            Message::Execute(s) => (s, true),
            Message::Other => return,
        };
        self.pending = Some(Pending {
            line: line_no,
            text,
            execute,
            params: None,
            in_params: false,
            error: None,
        });
    }

    /// The next csvlog record's fields; `None` at the end.
    fn csv_record(&mut self) -> Option<(u64, Result<Vec<String>, String>)> {
        let start = self.line + 1;
        let mut fields: Vec<Vec<u8>> = vec![Vec::new()];
        let mut size = 0usize;
        let mut over = false;
        let mut quoted = false;
        let mut any = false;
        loop {
            let Some(line_over) = self.line() else {
                if !any {
                    return None;
                }
                break;
            };
            any = true;
            over |= line_over;
            let mut i = 0;
            let b = &self.buf;
            while i < b.len() {
                let c = b[i];
                if quoted {
                    if c == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            fields.last_mut().unwrap_or(&mut Vec::new()).push(b'"');
                            i += 2;
                            continue;
                        }
                        quoted = false;
                    } else if let Some(f) = fields.last_mut() {
                        f.push(c);
                    }
                } else if c == b'"' {
                    quoted = true;
                } else if c == b',' {
                    if fields.len() > 64 {
                        over = true;
                        fields.truncate(1);
                    }
                    fields.push(Vec::new());
                } else if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
                i += 1;
            }
            size += b.len();
            if size > MAX_ENTRY {
                over = true;
                fields = vec![Vec::new()];
            }
            if !quoted {
                break;
            }
            if let Some(f) = fields.last_mut() {
                f.push(b'\n');
            }
        }
        if over {
            return Some((
                start,
                Err(format!(
                    "the record is longer than {} KiB: not read",
                    MAX_ENTRY >> 10
                )),
            ));
        }
        if quoted {
            return Some((
                start,
                Err("a quoted field is not closed at the end of the log".into()),
            ));
        }
        let fields: Result<Vec<String>, _> = fields.into_iter().map(String::from_utf8).collect();
        Some((start, fields.map_err(|_| "the record is not UTF-8".into())))
    }

    fn csv_step(&mut self) {
        // csvlog: error_severity is field 12, message 14, detail 15 (1-based).
        let Some((line, rec)) = self.csv_record() else {
            self.done = true;
            return;
        };
        let fields = match rec {
            Ok(f) => f,
            Err(e) => {
                self.ready.push_back(Logged {
                    line,
                    database: Database::NotTracked,
                    text: Err(e),
                });
                return;
            }
        };
        if fields.len() < 15 || fields[11] != "LOG" {
            return;
        }
        self.entry(line, &fields[13], Some(&fields[14]));
    }

    fn json_step(&mut self) {
        let Some(over) = self.line() else {
            self.done = true;
            return;
        };
        let line = self.line;
        if over {
            self.ready.push_back(Logged {
                line,
                database: Database::NotTracked,
                text: Err(format!(
                    "the line is longer than {} KiB: not read",
                    MAX_ENTRY >> 10
                )),
            });
            return;
        }
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let v: serde_json::Value = match serde_json::from_slice(&self.buf) {
            Ok(v) => v,
            Err(e) => {
                self.ready.push_back(Logged {
                    line,
                    database: Database::NotTracked,
                    text: Err(format!("not a jsonlog line: {e}")),
                });
                return;
            }
        };
        if v.get("error_severity").and_then(|s| s.as_str()) != Some("LOG") {
            return;
        }
        let Some(m) = v.get("message").and_then(|m| m.as_str()) else {
            return;
        };
        let detail = v.get("detail").and_then(|d| d.as_str()).map(str::to_owned);
        let m = m.to_owned();
        self.entry(line, &m, detail.as_deref());
    }

    /// A csvlog or jsonlog message with its detail.
    fn entry(&mut self, line: u64, message_text: &str, detail: Option<&str>) {
        let (text, execute) = match message(message_text) {
            Message::Statement(s) => (s, false),
            Message::Execute(s) => (s, true),
            Message::Other => return,
        };
        let params = detail
            .filter(|d| d.starts_with("parameters: "))
            .map(str::to_owned);
        self.ready.push_back(
            Pending {
                line,
                text,
                execute,
                params,
                in_params: false,
                error: None,
            }
            .finish(),
        );
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Logged;

    fn next(&mut self) -> Option<Logged> {
        loop {
            if let Some(l) = self.ready.pop_front() {
                return Some(l);
            }
            if self.done {
                return None;
            }
            match self.format {
                Format::Stderr => self.stderr_step(),
                Format::Csv => self.csv_step(),
                Format::Json => self.json_step(),
                Format::MariadbGeneral => self.general_step(),
            }
        }
    }
}

impl<R: BufRead> Reader<R> {
    /// One line of a MariaDB general log.
    fn general_step(&mut self) {
        use super::general_log::{Line, connect_database, line};
        let Some(over) = self.line() else {
            self.done = true;
            self.finish_general();
            return;
        };
        let line_no = self.line;
        let entry = match line(&self.buf) {
            Line::More => {
                // A later line of the statement being read (none: text outside any entry).
                if let Some((p, _)) = self.general.as_mut()
                    && p.error.is_none()
                {
                    match std::str::from_utf8(&self.buf) {
                        _ if over || p.text.len() + self.buf.len() > MAX_ENTRY => {
                            p.error =
                                Some(format!("longer than {} KiB: not read", MAX_ENTRY >> 10));
                        }
                        Ok(s) => {
                            p.text.push('\n');
                            p.text.push_str(s);
                        }
                        Err(_) => p.error = Some(format!("line {line_no} is not UTF-8")),
                    }
                }
                return;
            }
            Line::Header => None,
            Line::Entry {
                id,
                command,
                argument,
            } => Some((
                id,
                command.to_vec(),
                std::str::from_utf8(argument).map(str::to_owned),
            )),
        };
        self.finish_general();
        let Some((id, command, argument)) = entry else {
            // A header: the server (re)opened the log. After a restart the connection ids
            // start again, so no database known before holds (after a `FLUSH LOGS` this
            // forgets too much: those statements are counted as of an unknown database,
            // never misplaced).
            self.connections.clear();
            return;
        };
        match (command.as_slice(), argument) {
            (b"Query" | b"Execute", argument) => {
                let error = match &argument {
                    _ if over => Some(format!(
                        "the line is longer than {} KiB: not read",
                        MAX_ENTRY >> 10
                    )),
                    Ok(_) => None,
                    Err(_) => Some("the line is not UTF-8".into()),
                };
                self.general = Some((
                    Pending {
                        line: line_no,
                        text: argument.unwrap_or_default(),
                        execute: false,
                        params: None,
                        in_params: false,
                        error,
                    },
                    id,
                ));
            }
            (b"Connect" | b"Change user", Ok(a)) if !over => {
                if let Some(db) = connect_database(&a) {
                    self.connections.set(id, db);
                }
            }
            (b"Init DB", Ok(a)) if !over => {
                self.connections.set(id, Database::Named(a));
            }
            (b"Quit", _) => self.connections.quit(id),
            _ => {}
        }
    }

    /// The `Query`/`Execute` being read, as one entry per statement in it, each with its
    /// connection's database then: a `USE` among them changes it for the ones after.
    fn finish_general(&mut self) {
        let Some((p, id)) = self.general.take() else {
            return;
        };
        let line = p.line;
        let text = match p.error {
            Some(e) => Err(e),
            None => Ok(p.text),
        };
        let Ok(text) = text else {
            self.ready.push_back(Logged {
                line,
                text,
                database: self.connections.of(id),
            });
            return;
        };
        let pieces = super::lex::split(&text, super::lex::Dialect::Mariadb);
        let Ok(pieces) = pieces else {
            // Not lexable: the replay names why.
            self.ready.push_back(Logged {
                line,
                database: self.connections.of(id),
                text: Ok(text),
            });
            return;
        };
        for piece in pieces {
            self.ready.push_back(Logged {
                line,
                text: Ok(piece.to_owned()),
                database: self.connections.of(id),
            });
            if let Some(db) = super::mariadb::use_target(piece) {
                self.connections.set(id, Database::Named(db));
            }
        }
    }
}
