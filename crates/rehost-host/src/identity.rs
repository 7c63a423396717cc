//! Which machine this is, for what a host keeps under a directory that another machine may
//! share (a home directory on NFS): its run locks' fallback and the agent's manifest cache.

/// The machine's identity: `/etc/machine-id` (or D-Bus's copy) and the kernel's host name,
/// each empty where missing. Two machines sharing a home directory differ in at least one.
pub fn host_identity() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let mut id = read("/etc/machine-id");
    if id.is_empty() {
        id = read("/var/lib/dbus/machine-id");
    }
    format!("{id}\n{}", read("/proc/sys/kernel/hostname"))
}

/// This machine's id (`/etc/machine-id`), if it has one: what [`crate::Host::machine_id`]
/// answers for a local host, and what a rehearsal host's id is compared with.
pub fn this_machine_id() -> Option<String> {
    std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
