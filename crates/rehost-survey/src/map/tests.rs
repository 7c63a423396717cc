use super::*;
use crate::example;

fn overlap(a: &Node, b: &Node) -> bool {
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
}

/// Fifty services: every box holds its label, no two boxes overlap, every box is inside the
/// drawing, and each service has its lines.
#[test]
fn fifty_services_are_laid_out_without_overlap() {
    let inv = example::services(50);
    let l = layout(&inv);
    assert_eq!(l.nodes.iter().filter(|n| n.column == 0).count(), 50);
    assert_eq!(l.nodes.iter().filter(|n| n.column == 2).count(), 17);
    assert_eq!(l.nodes.iter().filter(|n| n.column == 3).count(), 25);
    for (i, a) in l.nodes.iter().enumerate() {
        assert!(text_width(&a.label) + 2.0 * 8.0 <= a.width + 0.01, "{a:?}");
        assert!(a.label.chars().count() <= MAX_LABEL);
        assert!(a.x >= 0.0 && a.y >= 0.0 && a.x + a.width <= l.width && a.y + a.height <= l.height);
        for b in &l.nodes[i + 1..] {
            assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
        }
    }
    assert_eq!(l.edges.len(), 50 * 4);
    assert!(
        l.height < 50.0 * 30.0 + 100.0,
        "legible, not sprawling: {}",
        l.height
    );
}

/// A hostile name is text in the SVG: no element, attribute or script of its own.
#[test]
fn a_hostile_name_cannot_add_markup() {
    let mut inv = example::inventory("old\"><script>alert(1)</script>");
    inv.services[0].id = "</text><script>alert(1)</script><text>".into();
    inv.services[0].names[0].name = "a.example.org\" onload=\"alert(2)\u{1b}[31m\u{fffe}".into();
    let svg = svg(&inv);
    assert!(!svg.contains("<script"), "{svg}");
    assert!(!svg.contains("onload=\""), "{svg}");
    assert!(!svg.contains('\u{1b}') && !svg.contains('\u{fffe}'));
    assert!(svg.contains("&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Every element is one the map draws.
    let mut tags: Vec<&str> = svg
        .split('<')
        .skip(1)
        .map(|t| t.split([' ', '>', '/']).next().unwrap())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags, ["g", "path", "rect", "svg", "text", "title"]);
}

#[test]
fn long_labels_are_cut_with_the_whole_text_in_the_tooltip() {
    let mut inv = example::inventory("old");
    let long = format!("/srv/{}", "x".repeat(100));
    inv.services[0].data[0].path = long.clone();
    let l = layout(&inv);
    let n = l.nodes.iter().find(|n| n.full == long).unwrap();
    assert_eq!(n.label.chars().count(), MAX_LABEL);
    assert!(n.label.ends_with('…'));
    assert!(svg(&inv).contains(&format!("<title>{long}</title>")));
}
