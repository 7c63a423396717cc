//! Reading plan text into the model, collecting every error with its span.
//!
//! The TOML is parsed once into a spanned tree (`toml::de::DeTable`); this module then walks it
//! by hand so that unknown keys, wrong types and bad values are all reported, each pointing at
//! its own line, instead of stopping at the first as a derived deserializer would.

use crate::diag::Diagnostic;
use crate::kinds;
use crate::model::*;
use crate::suggest::closest;
use toml::de::{DeInteger, DeTable, DeValue};

type SV<'i> = toml::Spanned<DeValue<'i>>;

mod loads;
mod names;
mod survey;

pub(crate) struct Reader {
    pub errors: Vec<Diagnostic>,
}

/// The plan read from its text, the errors found reading it, and the placeholders still to be
/// decided (`"TODO: …"` values).
pub(crate) fn read(src: &str) -> (Option<Plan>, Vec<Diagnostic>, Vec<crate::todo::Todo>) {
    let root = match DeTable::parse(src) {
        Ok(t) => t,
        Err(e) => {
            let msg = e.message().trim().to_owned();
            let d = Diagnostic::error("parse", e.span(), format!("invalid TOML: {msg}"))
                .with_help("fix the TOML syntax at this point; see docs/plan.md for the format");
            return (None, vec![d], Vec::new());
        }
    };
    let todos = crate::todo::find(root.get_ref());
    let mut r = Reader { errors: Vec::new() };
    let plan = r.plan(root.get_ref(), root.span());
    (Some(plan), r.errors, todos)
}

const TOP_KEYS: &[&str] = &[
    "migration",
    "hosts",
    "environments",
    "data",
    "databases",
    "services",
    "keys",
    "names",
    "clients",
    "steps",
    "survey",
];
const MIGRATION_KEYS: &[&str] = &[
    "title",
    "purpose",
    "initiated_by",
    "implemented_by",
    "window",
    "max_downtime",
    "max_data_loss",
    "point_of_no_return",
    "on_failure",
];
const HOST_KEYS: &[&str] = &[
    "local",
    "root",
    "ssh",
    "port",
    "identity_file",
    "proxy_jump",
    "ssh_config",
    "role",
    "address",
];

/// A table being read: the keys a reader takes are checked against what it allows.
pub(crate) struct Tbl<'a, 'i> {
    pub t: &'a DeTable<'i>,
    pub span: Span,
    /// Where this table is, for messages: `[migration]`, `step "stop-old"`.
    pub what: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    pub fn get(&self, key: &str) -> Option<&'a SV<'i>> {
        self.t.get(key)
    }
    /// The span of a key's value, or of the table when the key is missing.
    pub fn span_of(&self, key: &str) -> Span {
        self.get(key).map_or(self.span.clone(), |v| v.span())
    }
}

/// A TOML integer's value in its own radix (`0x10`, `0o20`, `0b10000`, `1_000`); `None` when it
/// does not fit an `i64`. The toml crate hands over the digits as written.
pub(crate) fn integer(i: &DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
}

pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Reader {
    pub fn err(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
    ) -> &mut Diagnostic {
        self.errors.push(Diagnostic::error(code, Some(span), msg));
        self.errors.last_mut().expect("just pushed")
    }

    fn wrong_type(&mut self, tbl: &Tbl, key: &str, v: &SV, want: &str) {
        self.err(
            "type",
            v.span(),
            format!(
                "{} key `{key}` must be {want}, not {}",
                tbl.what,
                type_name(v.get_ref())
            ),
        );
    }

    /// Reports every key of `tbl` not in `allowed`, with the likely intended key.
    pub fn check_keys(&mut self, tbl: &Tbl, allowed: &[&str]) {
        for (k, _) in tbl.t.iter() {
            let name: &str = k.get_ref();
            if !allowed.contains(&name) {
                let d = self.err(
                    "unknown-key",
                    k.span(),
                    format!("unknown key `{name}` in {}", tbl.what),
                );
                d.help = Some(match closest(name, allowed.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("allowed keys here: {}", allowed.join(", ")),
                });
            }
        }
    }

    pub fn table<'a, 'i>(
        &mut self,
        parent: &Tbl<'a, 'i>,
        key: &str,
        what: String,
    ) -> Option<Tbl<'a, 'i>> {
        let v = parent.get(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Tbl {
                t,
                span: v.span(),
                what,
            }),
            _ => {
                self.wrong_type(parent, key, v, "a table");
                None
            }
        }
    }

    pub fn str(&mut self, tbl: &Tbl, key: &str) -> Option<String> {
        let v = tbl.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(tbl, key, v, "a string");
                None
            }
        }
    }

    pub fn str_spanned(&mut self, tbl: &Tbl, key: &str) -> Option<Spanned<String>> {
        let span = tbl.get(key)?.span();
        self.str(tbl, key).map(|value| Spanned { value, span })
    }

    pub fn required_str(&mut self, tbl: &Tbl, key: &str) -> Option<String> {
        if tbl.get(key).is_none() {
            self.err(
                "missing-key",
                tbl.span.clone(),
                format!("{} needs `{key}`", tbl.what),
            );
            return None;
        }
        let s = self.str(tbl, key)?;
        if s.trim().is_empty() {
            self.err(
                "empty",
                tbl.span_of(key),
                format!("{} key `{key}` is empty", tbl.what),
            );
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, tbl: &Tbl, key: &str) -> Option<bool> {
        let v = tbl.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(tbl, key, v, "true or false");
                None
            }
        }
    }

    pub fn int(&mut self, tbl: &Tbl, key: &str) -> Option<i64> {
        let v = tbl.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match integer(i) {
                Some(n) => Some(n),
                None => {
                    self.err(
                        "value",
                        v.span(),
                        format!("{} key `{key}`: integer out of range", tbl.what),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(tbl, key, v, "an integer");
                None
            }
        }
    }

    /// A string, or an array of strings (a single string is taken as a list of one).
    pub fn str_list(&mut self, tbl: &Tbl, key: &str) -> Vec<String> {
        self.str_list_spanned(tbl, key)
            .into_iter()
            .map(|s| s.value)
            .collect()
    }

    pub fn str_list_spanned(&mut self, tbl: &Tbl, key: &str) -> Vec<Spanned<String>> {
        let Some(v) = tbl.get(key) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::String(s) => vec![Spanned {
                value: s.to_string(),
                span: v.span(),
            }],
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(Spanned {
                            value: s.to_string(),
                            span: item.span(),
                        }),
                        other => {
                            self.err(
                                "type",
                                item.span(),
                                format!(
                                    "{} key `{key}` must list strings, not {}",
                                    tbl.what,
                                    type_name(other)
                                ),
                            );
                        }
                    }
                }
                out
            }
            _ => {
                self.wrong_type(tbl, key, v, "a string or an array of strings");
                Vec::new()
            }
        }
    }

    pub fn duration(&mut self, tbl: &Tbl, key: &str) -> Option<std::time::Duration> {
        let v = tbl.get(key)?;
        let text = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(_) => {
                self.err(
                    "type",
                    v.span(),
                    format!("{} key `{key}` needs a unit", tbl.what),
                )
                .help = Some(
                    "write durations with units, such as \"30s\", \"15m\" or \"1h 30m\"".into(),
                );
                return None;
            }
            _ => {
                self.wrong_type(tbl, key, v, "a duration such as \"15m\"");
                return None;
            }
        };
        match parse_duration(&text) {
            Some(d) => Some(d),
            None => {
                self.err(
                    "value",
                    v.span(),
                    format!("{} key `{key}`: `{text}` is not a duration", tbl.what),
                )
                .help =
                    Some("write durations such as \"30s\", \"15m\", \"1h 30m\" or \"2d\"".into());
                None
            }
        }
    }

    pub fn timestamp(&mut self, tbl: &Tbl, key: &str) -> Option<(jiff::Timestamp, String)> {
        let v = tbl.get(key)?;
        let text = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Datetime(d) => d.to_string(),
            _ => {
                self.wrong_type(tbl, key, v, "a date-time with an offset");
                return None;
            }
        };
        match text.parse::<jiff::Timestamp>() {
            Ok(t) => Some((t, text)),
            Err(_) => {
                self.err(
                    "value",
                    v.span(),
                    format!(
                        "{} key `{key}`: `{text}` is not a date-time with a time zone offset",
                        tbl.what
                    ),
                )
                .help = Some(
                    "write it as RFC 3339 with an offset, such as \"2026-12-05T22:00:00+01:00\""
                        .into(),
                );
                None
            }
        }
    }

    pub fn command(&mut self, tbl: &Tbl, key: &str) -> Option<Command> {
        let v = tbl.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Command::Shell(s.to_string())),
            DeValue::Array(_) => {
                let argv = self.str_list(tbl, key);
                if argv.is_empty() {
                    self.err(
                        "empty",
                        v.span(),
                        format!("{} key `{key}` is an empty command", tbl.what),
                    );
                    return None;
                }
                Some(Command::Argv(argv))
            }
            _ => {
                self.wrong_type(tbl, key, v, "a shell string or an argument array");
                None
            }
        }
    }

    fn host_path(&mut self, tbl: &Tbl, key: &str) -> Option<HostPath> {
        let s = self.required_str(tbl, key)?;
        match s.split_once(':') {
            Some((h, p)) if !h.is_empty() && !p.is_empty() && !h.contains('/') => Some(HostPath {
                host: h.to_owned(),
                path: p.to_owned(),
            }),
            _ => {
                self.err(
                    "value",
                    tbl.span_of(key),
                    format!("{} key `{key}`: `{s}` is not HOST:PATH", tbl.what),
                )
                .help = Some("name a plan host and a path, such as \"old:/srv/billing\"".into());
                None
            }
        }
    }

    /// Iterates an array of tables (`[[steps]]`), reporting anything else.
    fn array_of_tables<'a, 'i>(&mut self, root: &Tbl<'a, 'i>, key: &str) -> Vec<Tbl<'a, 'i>> {
        let Some(v) = root.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(a) = v.get_ref() else {
            self.err(
                "type",
                v.span(),
                format!("`{key}` must be an array of tables: write [[{key}]]"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in a.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Tbl {
                    t,
                    span: item.span(),
                    what: format!("[[{key}]] #{}", i + 1),
                }),
                other => {
                    self.err(
                        "type",
                        item.span(),
                        format!(
                            "[[{key}]] #{} must be a table, not {}",
                            i + 1,
                            type_name(other)
                        ),
                    );
                }
            }
        }
        out
    }

    fn plan(&mut self, root: &DeTable<'_>, span: Span) -> Plan {
        let root = Tbl {
            t: root,
            span,
            what: "the plan".into(),
        };
        self.check_keys(&root, TOP_KEYS);
        let migration = self.migration(&root);
        let hosts = match self.table(&root, "hosts", "[hosts]".into()) {
            Some(t) => self.hosts(&t, "hosts"),
            None => Vec::new(),
        };
        let mut environments = Vec::new();
        if let Some(envs) = self.table(&root, "environments", "[environments]".into()) {
            for (k, v) in envs.t.iter() {
                let name = k.get_ref().to_string();
                match v.get_ref() {
                    DeValue::Table(t) => {
                        let tbl = Tbl {
                            t,
                            span: v.span(),
                            what: format!("[environments.{name}]"),
                        };
                        let hosts = self.hosts(&tbl, &format!("environments.{name}"));
                        let window = self.window(&tbl, &format!("[environments.{name}.window]"));
                        let databases = self.database_overrides(&tbl, &name);
                        let loads = self.loads(&tbl, &name);
                        let endpoints = self.endpoints(&tbl, &name);
                        environments.push(Environment {
                            name,
                            hosts,
                            window,
                            databases,
                            loads,
                            endpoints,
                            span: k.span().start..v.span().end,
                        });
                    }
                    other => {
                        self.err(
                            "type",
                            v.span(),
                            format!(
                                "[environments.{name}] must be a table of hosts, not {}",
                                type_name(other)
                            ),
                        );
                    }
                }
            }
        }
        let data = self
            .array_of_tables(&root, "data")
            .iter()
            .filter_map(|t| self.data_set(t))
            .collect();
        let databases = self
            .array_of_tables(&root, "databases")
            .iter()
            .filter_map(|t| self.database(t))
            .collect();
        let services: Vec<Service> = self
            .array_of_tables(&root, "services")
            .iter()
            .filter_map(|t| self.service(t))
            .collect();
        let keys = self
            .array_of_tables(&root, "keys")
            .iter()
            .filter_map(|t| self.key(t))
            .collect();
        let names = self
            .array_of_tables(&root, "names")
            .iter()
            .filter_map(|t| self.name(t))
            .collect();
        let clients = self
            .array_of_tables(&root, "clients")
            .iter()
            .filter_map(|t| self.client(t))
            .collect();
        let step_tables = self.array_of_tables(&root, "steps");
        // Duplicate ids are found over every step table, even those that could not be read.
        let mut seen: Vec<(String, Span)> = Vec::new();
        for t in &step_tables {
            if let Some(v) = t.get("id")
                && let Some(id) = v.get_ref().as_str()
            {
                if seen.iter().any(|(s, _)| s == id) {
                    self.err(
                        "duplicate-id",
                        v.span(),
                        format!("step id `{id}` is used twice"),
                    )
                    .help = Some("give each step its own id".into());
                } else {
                    seen.push((id.to_owned(), v.span()));
                }
            }
        }
        let steps = step_tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| kinds::read_step(self, t, i))
            .collect::<Vec<_>>();
        // Keep positions dense even where a step could not be read. A service step without a
        // `host` acts on its service's host.
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                s.index = i;
                if s.host.is_none()
                    && let Some(svc) = kinds::service_of(&s.kind)
                    && let Some(d) = services.iter().find(|d| d.id == svc)
                {
                    s.host = Some(d.host.clone());
                }
                s
            })
            .collect();
        let survey = self.survey(&root);
        Plan {
            migration,
            hosts,
            environments,
            data,
            databases,
            services,
            keys,
            names,
            clients,
            steps,
            survey,
        }
    }

    fn migration(&mut self, root: &Tbl) -> Migration {
        let Some(t) = self.table(root, "migration", "[migration]".into()) else {
            if root.get("migration").is_none() {
                self.err("missing-key", 0..0, "the plan has no [migration] table")
                    .help =
                    Some("start the plan with [migration] and its title; see docs/plan.md".into());
            }
            return Migration {
                title: String::new(),
                purpose: None,
                initiated_by: Vec::new(),
                implemented_by: Vec::new(),
                window: None,
                max_downtime: None,
                max_data_loss: None,
                point_of_no_return: None,
                on_failure: OnFailure::Stop,
                span: 0..0,
            };
        };
        self.check_keys(&t, MIGRATION_KEYS);
        let title = self.required_str(&t, "title").unwrap_or_default();
        let window = self.window(&t, "[migration.window]");
        let on_failure = self.on_failure(&t).unwrap_or_default();
        Migration {
            title,
            purpose: self.str(&t, "purpose"),
            initiated_by: self.str_list(&t, "initiated_by"),
            implemented_by: self.str_list(&t, "implemented_by"),
            window,
            max_downtime: self.duration(&t, "max_downtime"),
            max_data_loss: self.duration(&t, "max_data_loss"),
            point_of_no_return: self.str_spanned(&t, "point_of_no_return"),
            on_failure,
            span: t.span.clone(),
        }
    }

    /// A `window = { start, end }` in `t` (the migration, or an environment's own).
    fn window(&mut self, t: &Tbl, what: &str) -> Option<Window> {
        self.table(t, "window", what.into()).and_then(|w| {
            self.check_keys(&w, &["start", "end"]);
            let start = self.timestamp(&w, "start");
            let end = self.timestamp(&w, "end");
            if w.get("start").is_none() || w.get("end").is_none() {
                self.err(
                    "missing-key",
                    w.span.clone(),
                    "the window needs both `start` and `end`",
                );
                return None;
            }
            let ((start, start_text), (end, end_text)) = (start?, end?);
            if end <= start {
                self.err("value", w.span.clone(), "the window ends before it starts");
                return None;
            }
            Some(Window {
                start,
                end,
                start_text,
                end_text,
                span: w.span.clone(),
            })
        })
    }

    pub fn on_failure(&mut self, t: &Tbl) -> Option<OnFailure> {
        let s = self.str(t, "on_failure")?;
        match s.as_str() {
            "stop" => Some(OnFailure::Stop),
            "rollback" => Some(OnFailure::Rollback),
            other => {
                self.err(
                    "value",
                    t.span_of("on_failure"),
                    format!("on_failure `{other}` is not known"),
                )
                .help = Some("write \"stop\" or \"rollback\"".into());
                None
            }
        }
    }

    fn hosts(&mut self, t: &Tbl, prefix: &str) -> Vec<HostDecl> {
        let mut out = Vec::new();
        for (k, v) in t.t.iter() {
            let name = k.get_ref().to_string();
            // An environment's own window, not a host (read by `window`).
            // ... and its databases' locations (read by `database_overrides`).
            // ... and its loads (read by `loads`), and its endpoints (read by `endpoints`).
            if prefix.starts_with("environments.")
                && (name == "window"
                    || name == "databases"
                    || name == "load"
                    || name == "endpoints")
            {
                continue;
            }
            let what = format!("[{prefix}.{name}]");
            let DeValue::Table(ht) = v.get_ref() else {
                self.err("type", v.span(), format!("{what} must be a table such as {{ local = true }} or {{ ssh = \"root@db01\" }}"));
                continue;
            };
            let ht = Tbl {
                t: ht,
                span: v.span(),
                what,
            };
            if let Some(h) = self.host(&ht, name, k.span()) {
                out.push(h);
            }
        }
        out
    }

    fn host(&mut self, t: &Tbl, name: String, key_span: Span) -> Option<HostDecl> {
        self.check_keys(t, HOST_KEYS);
        let local = self.bool(t, "local");
        let ssh = self.str(t, "ssh");
        let role = self.str(t, "role");
        let target = match (local, ssh) {
            (Some(true), None) => {
                for k in ["port", "identity_file", "proxy_jump", "ssh_config"] {
                    if t.get(k).is_some() {
                        self.err(
                            "value",
                            t.span_of(k),
                            format!("{}: `{k}` is for ssh hosts, not local ones", t.what),
                        );
                    }
                }
                HostTarget::Local {
                    root: self.str(t, "root"),
                }
            }
            (None | Some(false), Some(destination)) => {
                if destination.trim().is_empty() || destination.contains(char::is_whitespace) {
                    self.err(
                        "value",
                        t.span_of("ssh"),
                        format!("{}: `{destination}` is not an ssh destination", t.what),
                    )
                    .help = Some("write user@host or a Host alias from your ssh config".into());
                }
                let port = match self.int(t, "port") {
                    Some(p) if (1..=65535).contains(&p) => Some(p as u16),
                    Some(p) => {
                        self.err(
                            "value",
                            t.span_of("port"),
                            format!("{}: port {p} is out of range", t.what),
                        );
                        None
                    }
                    None => None,
                };
                HostTarget::Ssh {
                    destination,
                    port,
                    identity_file: self.str(t, "identity_file"),
                    proxy_jump: self.str(t, "proxy_jump"),
                    ssh_config: self.str(t, "ssh_config"),
                    root: self.str(t, "root"),
                }
            }
            (Some(true), Some(_)) => {
                self.err(
                    "value",
                    t.span.clone(),
                    format!("{} is both `local` and `ssh`: choose one", t.what),
                );
                return None;
            }
            _ => {
                self.err(
                    "missing-key",
                    t.span.clone(),
                    format!(
                        "{} says neither `local = true` nor `ssh = \"user@host\"`",
                        t.what
                    ),
                );
                return None;
            }
        };
        Some(HostDecl {
            name,
            target,
            role,
            address: self.str(t, "address"),
            span: key_span.start..t.span.end,
        })
    }

    fn data_set(&mut self, t: &Tbl) -> Option<DataSet> {
        self.check_keys(
            t,
            &[
                "id",
                "from",
                "to",
                "exclude",
                "description",
                "created_by",
                "backup",
            ],
        );
        let id = self.required_str(t, "id");
        let from = self.host_path(t, "from");
        let to = self.host_path(t, "to");
        let (exclude, exclude_spans) = self
            .str_list_spanned(t, "exclude")
            .into_iter()
            .map(|s| (s.value, s.span))
            .unzip();
        Some(DataSet {
            id: id?,
            from: from?,
            to: to?,
            exclude,
            exclude_spans,
            description: self.str(t, "description"),
            created_by: self.str(t, "created_by"),
            backup: self.bool(t, "backup").unwrap_or(false),
            span: t.span.clone(),
        })
    }

    /// `[environments.NAME.databases]`: for each database id, where it is in this environment.
    /// `endpoints = { "PRODUCTION" = "REHEARSAL", ... }`: strings both.
    fn endpoints(&mut self, env: &Tbl, name: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(t) = self.table(env, "endpoints", format!("[environments.{name}.endpoints]"))
        else {
            return out;
        };
        for (k, v) in t.t.iter() {
            match v.get_ref().as_str() {
                Some(to) if !to.trim().is_empty() && !k.get_ref().trim().is_empty() => {
                    out.push((k.get_ref().to_string(), to.to_owned()))
                }
                _ => {
                    self.err(
                        "type",
                        v.span(),
                        format!(
                            "[environments.{name}.endpoints]: `{}` must map to the rehearsal's own \
                             endpoint, a string such as \"127.0.0.1:5300\"",
                            crate::escape_control(k.get_ref())
                        ),
                    );
                }
            }
        }
        out
    }

    fn database_overrides(&mut self, env: &Tbl, name: &str) -> Vec<DatabaseOverride> {
        let mut out = Vec::new();
        let Some(dbs) = self.table(env, "databases", format!("[environments.{name}.databases]"))
        else {
            return out;
        };
        for (k, v) in dbs.t.iter() {
            let id = k.get_ref().to_string();
            let what = format!("[environments.{name}.databases.{id}]");
            let DeValue::Table(t) = v.get_ref() else {
                self.err(
                    "type",
                    v.span(),
                    format!("{what} must be a table such as {{ port = 5433, database = \"billing_test\" }}"),
                );
                continue;
            };
            let t = Tbl {
                t,
                span: v.span(),
                what,
            };
            self.check_keys(
                &t,
                &[
                    "database",
                    "from_database",
                    "to_database",
                    "port",
                    "from_port",
                    "to_port",
                    "socket",
                    "user",
                    "password_file",
                    "password",
                ],
            );
            self.no_password(&t);
            out.push(DatabaseOverride {
                id,
                database: self.str(&t, "database"),
                from_database: self.str(&t, "from_database"),
                to_database: self.str(&t, "to_database"),
                port: self.port(&t, "port"),
                from_port: self.port(&t, "from_port"),
                to_port: self.port(&t, "to_port"),
                socket: self.str(&t, "socket"),
                user: self.str(&t, "user"),
                password_file: self.str(&t, "password_file"),
                span: k.span().start..v.span().end,
            });
        }
        out
    }

    /// A `password` key is an error: a password is never written in the plan.
    fn no_password(&mut self, t: &Tbl) {
        if t.get("password").is_some() {
            self.err(
                "secret",
                t.span_of("password"),
                format!("{}: a password is never written in the plan", t.what),
            )
            .help = Some(
                "write password_file = \"/path/on/the/host\" (a file holding the password, readable there only), or use ~/.pgpass on the hosts".into(),
            );
        }
    }

    /// A TCP port under `key`, if set.
    fn port(&mut self, t: &Tbl, key: &str) -> Option<u16> {
        t.get(key)?;
        let n = self.int(t, key)?;
        match u16::try_from(n) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.err(
                    "value",
                    t.span_of(key),
                    format!("{}: `{key}` must be a TCP port (1-65535)", t.what),
                );
                None
            }
        }
    }

    fn database(&mut self, t: &Tbl) -> Option<Database> {
        self.check_keys(
            t,
            &[
                "id",
                "engine",
                "from",
                "to",
                "database",
                "from_database",
                "to_database",
                "old_version",
                "new_version",
                "port",
                "from_port",
                "to_port",
                "socket",
                "user",
                "password_file",
                "password",
            ],
        );
        self.no_password(t);
        let (p, fp, tp) = (
            self.port(t, "port"),
            self.port(t, "from_port"),
            self.port(t, "to_port"),
        );
        let id = self.required_str(t, "id");
        let engine = self.required_str(t, "engine");
        let from = self.required_str(t, "from");
        let to = self.required_str(t, "to");
        let engine = engine?;
        Some(Database {
            id: id?,
            kind: Engine::from_plan(&engine),
            engine,
            from: from?,
            to: to?,
            database: self.str(t, "database"),
            from_database: self.str(t, "from_database"),
            to_database: self.str(t, "to_database"),
            old_version: self.str(t, "old_version"),
            new_version: self.str(t, "new_version"),
            port: p,
            from_port: fp,
            to_port: tp,
            socket: self.str(t, "socket"),
            user: self.str(t, "user"),
            password_file: self.str(t, "password_file"),
            span: t.span.clone(),
        })
    }

    fn service(&mut self, t: &Tbl) -> Option<Service> {
        self.check_keys(
            t,
            &[
                "id",
                "host",
                "ports",
                "sockets",
                "start",
                "stop",
                "health",
                "persistent_connections",
                "new_host",
                "probe",
            ],
        );
        let id = self.required_str(t, "id");
        let host = self.required_str(t, "host");
        let new_host = self.str(t, "new_host");
        let probe = self.probe(t);
        if probe.is_some() && new_host.is_none() {
            self.err(
                "missing-key",
                t.span.clone(),
                format!("{} has a `probe` but no `new_host`", t.what),
            )
            .help = Some(
                "name the host the service runs on after the migration: new_host = \"HOST\" (its probe is sampled on both)".into(),
            );
        }
        let mut ports = Vec::new();
        if let Some(v) = t.get("ports") {
            match v.get_ref() {
                DeValue::Array(a) => {
                    for p in a.iter() {
                        match p.get_ref() {
                            DeValue::Integer(i) => match integer(i).map(u16::try_from) {
                                Some(Ok(n)) if n > 0 => ports.push(n),
                                _ => {
                                    self.err(
                                        "value",
                                        p.span(),
                                        format!("{}: port {} is out of range", t.what, i.as_str()),
                                    );
                                }
                            },
                            other => {
                                self.err(
                                    "type",
                                    p.span(),
                                    format!(
                                        "{}: ports are integers, not {}",
                                        t.what,
                                        type_name(other)
                                    ),
                                );
                            }
                        }
                    }
                }
                other => {
                    self.err(
                        "type",
                        v.span(),
                        format!(
                            "{} key `ports` must be an array of integers, not {}",
                            t.what,
                            type_name(other)
                        ),
                    );
                }
            }
        }
        let mut sockets = Vec::new();
        for p in self.str_list_spanned(t, "sockets") {
            if !p.value.starts_with('/') || p.value.contains('\0') || p.value.len() > 107 {
                self.err(
                    "value",
                    p.span.clone(),
                    format!(
                        "{}: socket `{}` is not an absolute path of a Unix socket (at most 107 bytes)",
                        t.what,
                        crate::escape_control(&p.value)
                    ),
                )
                .help = Some(
                    "give the listening socket's absolute path on the host, e.g. sockets = [\"/run/postgresql/.s.PGSQL.5432\"]".into(),
                );
            } else {
                sockets.push(p.value);
            }
        }
        Some(Service {
            id: id?,
            host: host?,
            ports,
            sockets,
            start: self.str(t, "start"),
            stop: self.str(t, "stop"),
            health: self.str(t, "health"),
            persistent_connections: self.bool(t, "persistent_connections").unwrap_or(false),
            new_host,
            probe,
            span: t.span.clone(),
        })
    }

    /// A service's `probe = { tcp = PORT }`, `{ http = URL, status, body }` or
    /// `{ command = "..." }`, with `interval` and `timeout`.
    fn probe(&mut self, svc: &Tbl) -> Option<Probe> {
        let what = format!("the `probe` of {}", svc.what);
        let t = self.table(svc, "probe", what.clone())?;
        self.check_keys(
            &t,
            &[
                "tcp", "http", "port", "status", "body", "command", "interval", "timeout",
            ],
        );
        let given: Vec<&str> = ["tcp", "http", "command"]
            .into_iter()
            .filter(|k| t.get(k).is_some())
            .collect();
        if given.len() != 1 {
            self.err(
                if given.is_empty() { "missing-key" } else { "conflict" },
                t.span.clone(),
                format!(
                    "{what} needs exactly one of `tcp`, `http` or `command`{}",
                    if given.is_empty() {
                        String::new()
                    } else {
                        format!(", not {}", given.join(" and "))
                    }
                ),
            )
            .help = Some(
                "probe = { tcp = 5432 }, probe = { http = \"/health\", port = 8080, status = 200 } or probe = { command = \"check {host}\" }".into(),
            );
            return None;
        }
        let port = |r: &mut Self, key: &str| -> Option<u16> {
            let n = r.int(&t, key)?;
            match u16::try_from(n) {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    let span = t.get(key).map(|v| v.span()).unwrap_or(t.span.clone());
                    r.err("value", span, format!("{what}: port {n} is out of range"));
                    None
                }
            }
        };
        if given[0] != "http" {
            for k in ["status", "body", "port"] {
                if let Some(v) = t.get(k) {
                    self.err(
                        "unknown-key",
                        v.span(),
                        format!("{what}: `{k}` belongs to an `http` probe"),
                    );
                }
            }
        }
        let check = match given[0] {
            "tcp" => ProbeCheck::Tcp {
                port: port(self, "tcp")?,
            },
            "command" => {
                let command = self.required_str(&t, "command")?;
                ProbeCheck::Command { command }
            }
            _ => {
                let span = t.get("http").map(|v| v.span()).unwrap_or(t.span.clone());
                let url = self.str(&t, "http")?;
                let explicit = if t.get("port").is_some() {
                    Some(port(self, "port")?)
                } else {
                    None
                };
                let (port, path) = match http_target(&url, explicit) {
                    Ok(x) => x,
                    Err((msg, help)) => {
                        self.err("value", span, format!("{what}: {msg}")).help = Some(help);
                        return None;
                    }
                };
                let status = match self.int(&t, "status") {
                    None => 200,
                    Some(n) => match u16::try_from(n) {
                        Ok(s) if (100..=599).contains(&s) => s,
                        _ => {
                            let span = t.get("status").map(|v| v.span()).unwrap_or(t.span.clone());
                            self.err(
                                "value",
                                span,
                                format!("{what}: status {n} is not an HTTP status (100 to 599)"),
                            );
                            return None;
                        }
                    },
                };
                ProbeCheck::Http {
                    port,
                    path,
                    status,
                    body: self.str(&t, "body"),
                }
            }
        };
        let interval = self
            .duration(&t, "interval")
            .unwrap_or(std::time::Duration::from_millis(200));
        let timeout = self
            .duration(&t, "timeout")
            .unwrap_or(std::time::Duration::from_secs(1));
        for (key, d, min) in [("interval", interval, 10), ("timeout", timeout, 10)] {
            if d < std::time::Duration::from_millis(min) {
                let span = t.get(key).map(|v| v.span()).unwrap_or(t.span.clone());
                self.err(
                    "value",
                    span,
                    format!("{what}: `{key}` must be at least {min}ms"),
                );
            }
        }
        Some(Probe {
            check,
            interval,
            timeout,
            span: t.span.clone(),
        })
    }

    fn key(&mut self, t: &Tbl) -> Option<KeyDecl> {
        self.check_keys(t, &["id", "host", "kind", "paths", "description"]);
        let id = self.required_str(t, "id");
        let host = self.required_str(t, "host");
        let paths = self.str_list(t, "paths");
        if paths.is_empty() {
            self.err(
                "missing-key",
                t.span.clone(),
                format!("{} needs `paths`: where the key material lives", t.what),
            );
        }
        Some(KeyDecl {
            id: id?,
            host: host?,
            kind: self.str(t, "kind").unwrap_or_else(|| "file".into()),
            paths,
            description: self.str(t, "description"),
            span: t.span.clone(),
        })
    }
}

/// An `http` probe's target: a path (`/health`, with `port`), or a URL
/// `http://{host}[:PORT]/path` whose host is the placeholder, so that each side is asked at
/// its own address. Returns the port and the path, or the error and what to write instead.
pub(crate) fn http_target(url: &str, port: Option<u16>) -> Result<(u16, String), (String, String)> {
    // A URL is ASCII without spaces; anything else is refused, not escaped.
    if url.chars().any(|c| !c.is_ascii_graphic()) {
        return Err((
            "the URL holds a space, a control character or a character beyond ASCII".into(),
            "percent-encode it (%20 for a space)".into(),
        ));
    }
    if url.starts_with('/') {
        let Some(port) = port else {
            return Err((
                format!("`http = \"{url}\"` is a path and needs `port`"),
                "add port = PORT, or write the URL as \"http://{host}:PORT/path\"".into(),
            ));
        };
        return Ok((port, url.to_owned()));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err((
            format!("`{url}` is neither a path nor an http:// URL (https is not probed)"),
            "write \"/path\" with port = PORT, or \"http://{host}:PORT/path\"".into(),
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(after) = authority.strip_prefix("{host}") else {
        return Err((
            format!("`{url}` names a host of its own: both sides would be probed at one address"),
            "write {host} where the host goes (\"http://{host}:8080/health\"): each side is probed at its own address".into(),
        ));
    };
    let in_url = match after {
        "" => None,
        p => match p.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err((
                    format!("`{url}`: `{after}` is not a port"),
                    "write \"http://{host}:PORT/path\"".into(),
                ));
            }
        },
    };
    match (in_url, port) {
        (Some(a), Some(b)) if a != b => Err((
            format!("`{url}` says port {a} and `port` says {b}"),
            "give the port once".into(),
        )),
        (a, b) => Ok((a.or(b).unwrap_or(80), path.to_owned())),
    }
}
