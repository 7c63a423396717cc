//! An inventory kept within [`limits`]: cut to them by the collector before it is sent
//! ([`bound`]), and refused whole by the receiver when a host sends more ([`from_json`]). A
//! compromised old server's agent may answer anything; what it sends is checked before any of
//! it is kept.

use crate::{Gap, Inventory, limits};
use serde_json::Value;

/// The inventory with every string cut to [`limits::MAX_STRING`] bytes and every list to
/// [`limits::MAX_ITEMS`], and a gap naming what was cut: what a collector sends always reads
/// back through [`from_json`].
pub fn bound(inv: Inventory) -> Inventory {
    let mut value = match serde_json::to_value(&inv) {
        Ok(v) => v,
        Err(_) => return inv,
    };
    let mut cut = Cut::default();
    cut_value(&mut value, &mut cut);
    if cut.strings == 0 && cut.lists == 0 {
        return inv;
    }
    let Ok(mut out) = serde_json::from_value::<Inventory>(value) else {
        return inv;
    };
    if out.gaps.len() >= limits::MAX_ITEMS {
        out.gaps.truncate(limits::MAX_ITEMS - 1);
    }
    out.gaps.push(Gap {
        what: "the inventory".into(),
        why: format!(
            "{} string(s) cut to {} bytes and {} list(s) to {} items: more than rehost keeps of a host",
            cut.strings,
            limits::MAX_STRING,
            cut.lists,
            limits::MAX_ITEMS
        ),
    });
    out
}

#[derive(Default)]
struct Cut {
    strings: u64,
    lists: u64,
}

fn cut_value(v: &mut Value, cut: &mut Cut) {
    match v {
        Value::String(s) if s.len() > limits::MAX_STRING => {
            let mut end = limits::MAX_STRING;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            cut.strings += 1;
        }
        Value::Array(a) => {
            if a.len() > limits::MAX_ITEMS {
                a.truncate(limits::MAX_ITEMS);
                cut.lists += 1;
            }
            a.iter_mut().for_each(|x| cut_value(x, cut));
        }
        Value::Object(o) => o.values_mut().for_each(|x| cut_value(x, cut)),
        _ => {}
    }
}

/// An inventory as a host sent it (its JSON form), refused whole when it is larger than
/// [`limits::MAX_JSON_BYTES`], does not read as an inventory of this [`crate::FORMAT`], or holds
/// a list longer than [`limits::MAX_ITEMS`] or a string longer than [`limits::MAX_STRING`].
pub fn from_json(bytes: &[u8]) -> Result<Inventory, String> {
    if bytes.len() as u64 > limits::MAX_JSON_BYTES {
        return Err(format!(
            "an inventory of {} bytes, more than the {} accepted",
            bytes.len(),
            limits::MAX_JSON_BYTES
        ));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the inventory does not read: {e}"))?;
    check_value(&value, "")?;
    let inv: Inventory =
        serde_json::from_value(value).map_err(|e| format!("the inventory does not read: {e}"))?;
    if inv.format != crate::FORMAT {
        return Err(format!(
            "an inventory of format {}, this rehost reads format {}",
            inv.format,
            crate::FORMAT
        ));
    }
    Ok(inv)
}

fn check_value(v: &Value, at: &str) -> Result<(), String> {
    match v {
        Value::String(s) if s.len() > limits::MAX_STRING => Err(format!(
            "a string of {} bytes at `{at}`, more than the {} accepted",
            s.len(),
            limits::MAX_STRING
        )),
        Value::Array(a) if a.len() > limits::MAX_ITEMS => Err(format!(
            "a list of {} items at `{at}`, more than the {} accepted",
            a.len(),
            limits::MAX_ITEMS
        )),
        Value::Array(a) => a.iter().try_for_each(|x| check_value(x, at)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            if k.len() > limits::MAX_STRING {
                return Err("a key longer than accepted".to_owned());
            }
            check_value(x, &format!("{at}.{k}"))
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_bound_sends_reads_back_and_more_is_refused() {
        let mut inv = Inventory::new("old", "2026-12-07T12:00:00Z");
        inv.system.hostname = "x".repeat(limits::MAX_STRING + 10);
        let json = serde_json::to_vec(&inv).unwrap();
        let e = from_json(&json).unwrap_err();
        assert!(e.contains("at `.system.hostname`"), "{e}");
        let bounded = bound(inv);
        assert_eq!(bounded.system.hostname.len(), limits::MAX_STRING);
        assert!(bounded.gaps.iter().any(|g| g.what == "the inventory"));
        let back = from_json(&serde_json::to_vec(&bounded).unwrap()).unwrap();
        assert_eq!(back, bounded);
        assert!(from_json(b"{\"format\":1").is_err());
        assert!(from_json(b"[1,2,3]").is_err());
        let mut other = Inventory::new("old", "");
        other.format = 99;
        let e = from_json(&serde_json::to_vec(&other).unwrap()).unwrap_err();
        assert!(e.contains("format 99"), "{e}");
    }
}
