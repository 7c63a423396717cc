//! The dependency map: an inventory drawn as one standalone SVG (`rehost survey --map
//! FILE.svg`), in five columns — services, data, keys, names, clients — with a line from
//! each service to what it depends on and who depends on it.
//!
//! The layout is computed, not left to a browser: every label is set in a monospaced font
//! whose advance is known, so each box is as wide as its text (cut at [`MAX_LABEL`]
//! characters, the whole text in its `<title>`), each column as wide as its widest box, and
//! rows one box high apart; nothing can overlap. Items of the other columns are ordered by
//! the mean row of the services they belong to, which keeps most lines short. The SVG has
//! no script, no style sheet and no external reference; every string of the inventory is
//! XML-encoded (and made visible first by the one escaper), so a hostile name is text.

use crate::model::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The longest label drawn, in characters; longer ones end in `…`.
pub const MAX_LABEL: usize = 44;
/// The font size, and the advance of one character of the monospaced font at that size
/// (DejaVu Sans Mono and Liberation Mono advance 0.60 em; 0.62 leaves a margin).
const FONT: f64 = 12.0;
const ADVANCE: f64 = FONT * 0.62;
const PAD: f64 = 8.0;
const BOX_H: f64 = 20.0;
const ROW: f64 = 26.0;
const GAP: f64 = 70.0;
const TOP: f64 = 44.0;
const MARGIN: f64 = 16.0;

/// The columns, left to right.
pub const COLUMNS: [&str; 5] = ["services", "data", "keys", "names", "clients"];

/// A box of the map, where it is drawn (for tests and embedding).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub column: usize,
    /// The label drawn (cut to [`MAX_LABEL`]).
    pub label: String,
    /// The whole text (its tooltip).
    pub full: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The map laid out: its boxes, its lines (indices of boxes) and its size.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub nodes: Vec<Node>,
    pub edges: Vec<(usize, usize)>,
    pub width: f64,
    pub height: f64,
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_LABEL - 1).collect();
    out.push('…');
    out
}

/// The width a label takes.
pub fn text_width(label: &str) -> f64 {
    label.chars().count() as f64 * ADVANCE
}

/// Lays the inventory out.
pub fn layout(inv: &Inventory) -> Layout {
    // The items of each column (by their text), and which services each belongs to.
    let mut items: [Vec<String>; 5] = Default::default();
    let mut owners: [BTreeMap<String, Vec<usize>>; 5] = Default::default();
    let mut edges_by_text: Vec<(usize, usize, String)> = Vec::new();
    for (si, s) in inv.services.iter().enumerate() {
        let mut label = s.id.clone();
        let ports: Vec<String> = s
            .listens
            .iter()
            .filter(|l| l.proto != Proto::Unix)
            .map(|l| l.port.to_string())
            .collect();
        if !ports.is_empty() {
            label = format!("{label} :{}", ports.join(","));
        }
        items[0].push(label);
        let mut deps: Vec<(usize, String)> = Vec::new();
        deps.extend(s.data.iter().map(|d| (1, d.path.clone())));
        deps.extend(s.databases.iter().flat_map(|d| {
            d.names
                .iter()
                .map(move |n| (1, format!("{} database {n}", d.engine)))
        }));
        deps.extend(s.keys.iter().map(|k| (2, k.path.clone())));
        deps.extend(s.names.iter().map(|n| (3, n.name.clone())));
        for c in inv
            .clients
            .iter()
            .filter(|c| c.service.as_deref() == Some(&s.id))
        {
            let mut t = c.peer.clone();
            if c.persistent {
                t.push_str(" (holds a connection)");
            }
            deps.push((4, t));
        }
        for (col, text) in deps {
            let o = owners[col].entry(text.clone()).or_default();
            if !o.contains(&si) {
                o.push(si);
                edges_by_text.push((si, col, text));
            }
        }
    }
    // Barycentric order: by the mean row of the services an item belongs to.
    for col in 1..5 {
        let mut v: Vec<(f64, String)> = owners[col]
            .iter()
            .map(|(t, o)| (o.iter().sum::<usize>() as f64 / o.len() as f64, t.clone()))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        items[col] = v.into_iter().map(|(_, t)| t).collect();
    }
    // Column widths and positions.
    let mut x = MARGIN;
    let mut nodes = Vec::new();
    let mut index: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let rows = items.iter().map(Vec::len).max().unwrap_or(0);
    let mut height: f64 = TOP + BOX_H;
    for (col, list) in items.iter().enumerate() {
        let widest = list
            .iter()
            .map(|t| text_width(&cut(&rehost_plan::escape_control(t))))
            .fold(text_width(COLUMNS[col]), f64::max);
        let w = widest + 2.0 * PAD;
        // A short column is centred on the rows of the longest.
        let offset = (rows - list.len()) as f64 * ROW / 2.0;
        for (i, t) in list.iter().enumerate() {
            let shown = rehost_plan::escape_control(t);
            let y = TOP + offset + i as f64 * ROW;
            index.insert((col, t.clone()), nodes.len());
            nodes.push(Node {
                column: col,
                label: cut(&shown),
                full: shown,
                x,
                y,
                width: w,
                height: BOX_H,
            });
            height = height.max(y + BOX_H);
        }
        x += w + GAP;
    }
    let edges = edges_by_text
        .into_iter()
        .filter_map(|(si, col, t)| Some((si, *index.get(&(col, t))?)))
        .collect();
    Layout {
        nodes,
        edges,
        width: x - GAP + MARGIN,
        height: height + MARGIN,
    }
}

/// Text for XML: the markup characters as entities, and the two characters XML cannot hold
/// as the replacement character (controls were made visible by the escaper before).
fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const FILL: [&str; 5] = ["#dbe9f6", "#e3f1df", "#fbe8d3", "#ece1f5", "#f2f2f2"];

/// The map as a standalone SVG document.
pub fn svg(inv: &Inventory) -> String {
    let l = layout(inv);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" viewBox=\"0 0 {:.0} {:.0}\" font-family=\"DejaVu Sans Mono, Liberation Mono, monospace\" font-size=\"{FONT}\">",
        l.width, l.height, l.width, l.height
    );
    let _ = writeln!(
        s,
        "<title>{}</title>",
        xml_text(&rehost_plan::escape_control(&format!(
            "Dependencies of {} (rehost survey, {})",
            inv.host, inv.taken_at
        )))
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>");
    // Column headings above the first box of each column.
    for (col, name) in COLUMNS.iter().enumerate() {
        let x = l
            .nodes
            .iter()
            .find(|n| n.column == col)
            .map(|n| n.x)
            .unwrap_or(MARGIN);
        let _ = writeln!(
            s,
            "<text class=\"heading\" x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\">{name}</text>",
            x + PAD,
            TOP - 16.0
        );
    }
    // Lines first, under the boxes.
    s.push_str(
        "<g fill=\"none\" stroke=\"#6b7d90\" stroke-opacity=\"0.45\" stroke-width=\"1.2\">\n",
    );
    for &(a, b) in &l.edges {
        let (na, nb) = (&l.nodes[a], &l.nodes[b]);
        let (x1, y1) = (na.x + na.width, na.y + na.height / 2.0);
        let (x2, y2) = (nb.x, nb.y + nb.height / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = writeln!(
            s,
            "<path d=\"M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}\"/>"
        );
    }
    s.push_str("</g>\n");
    for n in &l.nodes {
        let _ = writeln!(
            s,
            "<g class=\"node\"><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\" stroke=\"#8a9bb0\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            xml_text(&n.full),
            n.x,
            n.y,
            n.width,
            n.height,
            FILL[n.column],
            n.x + PAD,
            n.y + n.height / 2.0 + FONT * 0.35,
            xml_text(&n.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests;
