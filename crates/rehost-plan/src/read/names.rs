//! `[[names]]` and `[[clients]]`: the names clients use to reach the service (through DNS
//! or their hosts files) and the clients that hold its address locally.

use super::{Reader, Tbl};
use crate::model::*;

impl Reader {
    pub(super) fn name(&mut self, t: &Tbl) -> Option<NameDecl> {
        self.check_keys(
            t,
            &[
                "id",
                "name",
                "type",
                "old",
                "new",
                "ttl",
                "lowered_ttl",
                "resolvers",
                "authoritative",
                "via",
                "clients",
            ],
        );
        let name = self.required_str(t, "name")?;
        let via = match self.str(t, "via").as_deref() {
            None | Some("dns") => NameVia::Dns,
            Some("hosts-file") => NameVia::HostsFile,
            Some(other) => {
                self.err(
                    "value",
                    t.span_of("via"),
                    format!(
                        "{}: via = `{}` is not a way clients resolve a name: use \"dns\" or \"hosts-file\"",
                        t.what,
                        crate::escape_control(other)
                    ),
                );
                NameVia::Dns
            }
        };
        Some(NameDecl {
            id: self.str(t, "id").unwrap_or_else(|| name.clone()),
            name,
            record: self.str(t, "type").unwrap_or_else(|| "A".into()),
            old: self.str(t, "old"),
            new: self.str(t, "new"),
            ttl: self.duration(t, "ttl"),
            lowered_ttl: self.duration(t, "lowered_ttl"),
            resolvers: self.str_list(t, "resolvers"),
            authoritative: self.str_list(t, "authoritative"),
            via,
            clients: self.str_list(t, "clients"),
            span: t.span.clone(),
        })
    }

    pub(super) fn client(&mut self, t: &Tbl) -> Option<ClientDecl> {
        self.check_keys(t, &["id", "hosts", "files", "count", "description"]);
        let id = self.required_str(t, "id");
        let count = match self.int(t, "count") {
            Some(n) if n >= 0 => Some(n as u64),
            Some(_) => {
                self.err(
                    "value",
                    t.span_of("count"),
                    format!("{}: count cannot be negative", t.what),
                );
                None
            }
            None => None,
        };
        Some(ClientDecl {
            id: id?,
            hosts: self.str_list(t, "hosts"),
            files: self.str_list(t, "files"),
            count,
            description: self.str(t, "description"),
            span: t.span.clone(),
        })
    }
}
