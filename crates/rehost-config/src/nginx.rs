//! `nginx -T` output: every file of the configuration after a `# configuration file PATH:`
//! marker. Each directive becomes a key in its block context (`http.server[listen 443
//! ssl].ssl_protocols`), with the file and line it was written on. An `include` is replaced by
//! the directives of the files it names, in its own context, as nginx reads them.

use crate::Entry;

/// The deepest include nesting followed (nginx refuses loops itself; a dump may lie).
const MAX_DEPTH: usize = 16;

struct Node {
    name: String,
    args: Vec<String>,
    children: Option<Vec<Node>>,
    line: usize,
}

struct File {
    path: String,
    nodes: Vec<Node>,
}

/// Splits the dump into its files; text before the first marker (nginx's own messages, when
/// stderr was merged) is not configuration.
fn files(name: &str, text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(p) = line
            .strip_prefix("# configuration file ")
            .and_then(|r| r.strip_suffix(':'))
        {
            out.push((p.to_owned(), String::new()));
            continue;
        }
        if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if out.is_empty() {
        out.push((name.to_owned(), text.to_owned()));
    }
    out
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Semi,
}

fn tokens(path: &str, text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut it = text.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            '\n' => {
                line += 1;
                it.next();
            }
            c if c.is_whitespace() => {
                it.next();
            }
            '#' => {
                while it.peek().is_some_and(|&c| c != '\n') {
                    it.next();
                }
            }
            '{' => {
                it.next();
                out.push((Tok::Open, line));
            }
            '}' => {
                it.next();
                out.push((Tok::Close, line));
            }
            ';' => {
                it.next();
                out.push((Tok::Semi, line));
            }
            '"' | '\'' => {
                let start = line;
                it.next();
                let mut w = String::new();
                loop {
                    match it.next() {
                        None => return Err(format!("{path}:{start}: a quote is never closed")),
                        Some('\\') => {
                            if let Some(n) = it.next() {
                                if n == '\n' {
                                    line += 1;
                                }
                                if n != c && n != '\\' {
                                    w.push('\\');
                                }
                                w.push(n);
                            }
                        }
                        Some(q) if q == c => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            w.push(ch);
                        }
                    }
                }
                out.push((Tok::Word(w), start));
            }
            _ => {
                let mut w = String::new();
                while let Some(&ch) = it.peek() {
                    if ch.is_whitespace() || matches!(ch, '{' | '}' | ';') {
                        break;
                    }
                    // `${var}` inside a word is nginx's variable, not a block.
                    if ch == '$' {
                        w.push(ch);
                        it.next();
                        if it.peek() == Some(&'{') {
                            for ch in it.by_ref() {
                                w.push(ch);
                                if ch == '}' {
                                    break;
                                }
                            }
                        }
                        continue;
                    }
                    w.push(ch);
                    it.next();
                }
                out.push((Tok::Word(w), line));
            }
        }
    }
    Ok(out)
}

fn nodes(path: &str, toks: &[(Tok, usize)], i: &mut usize, top: bool) -> Result<Vec<Node>, String> {
    let mut out = Vec::new();
    let mut words: Vec<(String, usize)> = Vec::new();
    while *i < toks.len() {
        let (t, line) = &toks[*i];
        *i += 1;
        match t {
            Tok::Word(w) => words.push((w.clone(), *line)),
            Tok::Semi | Tok::Open => {
                let Some(((name, at), args)) = words.split_first() else {
                    return Err(format!(
                        "{path}:{line}: `{}` without a directive",
                        if *t == Tok::Semi { ";" } else { "{" }
                    ));
                };
                let children = if *t == Tok::Open {
                    Some(nodes(path, toks, i, false)?)
                } else {
                    None
                };
                out.push(Node {
                    name: name.clone(),
                    args: args.iter().map(|(a, _)| a.clone()).collect(),
                    children,
                    line: *at,
                });
                words.clear();
            }
            Tok::Close => {
                if top {
                    return Err(format!("{path}:{line}: `}}` without its block"));
                }
                if let Some((w, l)) = words.first() {
                    return Err(format!("{path}:{l}: `{w}` is not ended by `;`"));
                }
                return Ok(out);
            }
        }
    }
    if let Some((w, l)) = words.first() {
        return Err(format!("{path}:{l}: `{w}` is not ended by `;`"));
    }
    if !top {
        return Err(format!("{path}: a block is never closed"));
    }
    Ok(out)
}

/// The label of a block among its siblings: `location[/api]`, `server[listen 443 ssl]`.
fn label(n: &Node) -> String {
    if n.name == "server" && n.args.is_empty() {
        let first = |d: &str| {
            n.children
                .iter()
                .flatten()
                .find(|c| c.name == d)
                .map(|c| c.args.join(" "))
        };
        return match first("listen") {
            Some(l) => format!("server[listen {l}]"),
            None => match first("server_name") {
                Some(s) => format!("server[server_name {s}]"),
                None => "server".into(),
            },
        };
    }
    if n.args.is_empty() {
        n.name.clone()
    } else {
        format!("{}[{}]", n.name, n.args.join(" "))
    }
}

/// A server block's label made unique by its `server_name` (virtual hosts on one port).
fn named_label(n: &Node) -> String {
    let name = n
        .children
        .iter()
        .flatten()
        .find(|c| c.name == "server_name")
        .map(|c| c.args.join(" "));
    match name {
        Some(s) => format!("{} server_name {s}]", label(n).trim_end_matches(']')),
        None => label(n),
    }
}

/// `*` and `?` as nginx's include globs use them (within one path component).
fn glob(pattern: &str, name: &str) -> bool {
    crate::wildcard(pattern, name, false)
}

struct Walk<'a> {
    files: &'a [File],
    dir: String,
    included: Vec<bool>,
    out: Vec<Entry>,
}

impl Walk<'_> {
    fn expand(&mut self, pattern: &str) -> Vec<usize> {
        let full = if pattern.starts_with('/') {
            pattern.to_owned()
        } else {
            format!("{}/{pattern}", self.dir)
        };
        let mut hits: Vec<usize> = (0..self.files.len())
            .filter(|&i| glob(&full, &self.files[i].path))
            .collect();
        hits.sort_by(|&a, &b| self.files[a].path.cmp(&self.files[b].path));
        hits
    }

    fn walk(&mut self, file: usize, nodes: &[Node], ctx: &str, depth: usize) -> Result<(), String> {
        let path = self.files[file].path.clone();
        let mut seen: Vec<String> = Vec::new();
        let labels: Vec<String> = nodes.iter().map(label).collect();
        for (k, n) in nodes.iter().enumerate() {
            let key = if ctx.is_empty() {
                n.name.clone()
            } else {
                format!("{ctx}.{}", n.name)
            };
            if n.name == "include" && n.children.is_none() && n.args.len() == 1 {
                let hits = self.expand(&n.args[0]);
                if !hits.is_empty() {
                    if depth >= MAX_DEPTH {
                        return Err(format!(
                            "{path}:{}: includes nested deeper than {MAX_DEPTH}",
                            n.line
                        ));
                    }
                    let files = self.files;
                    for h in hits {
                        self.included[h] = true;
                        self.walk(h, &files[h].nodes, ctx, depth + 1)?;
                    }
                    continue;
                }
            }
            match &n.children {
                None => self.out.push(Entry::new(
                    key,
                    &n.args.join(" "),
                    Some(format!("{path}:{}", n.line)),
                )),
                Some(children) => {
                    let mut l = labels[k].clone();
                    if labels.iter().filter(|x| **x == l).count() > 1 {
                        l = named_label(n);
                    }
                    let mut unique = l.clone();
                    let mut count = 1;
                    while seen.contains(&unique) {
                        count += 1;
                        unique = format!("{l}#{count}");
                    }
                    seen.push(unique.clone());
                    let inner = if ctx.is_empty() {
                        unique
                    } else {
                        format!("{ctx}.{unique}")
                    };
                    self.walk(file, children, &inner, depth)?;
                }
            }
        }
        Ok(())
    }
}

pub fn parse(name: &str, text: &str) -> Result<Vec<Entry>, String> {
    let mut parsed = Vec::new();
    for (path, body) in files(name, text) {
        let toks = tokens(&path, &body)?;
        let mut i = 0;
        let nodes = nodes(&path, &toks, &mut i, true)?;
        parsed.push(File { path, nodes });
    }
    let dir = parsed[0]
        .path
        .rsplit_once('/')
        .map(|(d, _)| d.to_owned())
        .unwrap_or_else(|| ".".into());
    let mut w = Walk {
        files: &parsed,
        dir,
        included: vec![false; parsed.len()],
        out: Vec::new(),
    };
    w.included[0] = true;
    w.walk(0, &parsed[0].nodes, "", 0)?;
    for (i, f) in parsed.iter().enumerate().skip(1) {
        if !w.included[i] {
            w.included[i] = true;
            w.walk(i, &f.nodes, "", 0)?;
        }
    }
    Ok(w.out)
}
