//! Just enough of ELF to tell whether an agent binary can run on a host: its machine (the
//! host's `uname -m`) and the newest glibc symbol version it needs (none for a static binary).
//! Reads the ELF header, the section headers and the `.gnu.version_r` entries; 64- and 32-bit,
//! little- and big-endian.

/// What an ELF executable needs from a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The machine as `uname -m` names it (`x86_64`, `aarch64`, …), or `machine N`.
    pub arch: String,
    /// The newest `GLIBC_x.y` it links against, as (x, y); `None` for a static binary or one
    /// that needs no versioned glibc symbol.
    pub glibc: Option<(u32, u32)>,
}

/// Reads `data` as an ELF executable; `None` when it is not one.
pub fn needs(data: &[u8]) -> Option<Needs> {
    if data.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match data.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big = *data.get(5)? == 2;
    let r = Reader { data, big };
    let machine = r.u16(18)?;
    let (shoff, shentsize, shnum) = if wide {
        (r.u64(0x28)?, r.u16(0x3a)? as u64, r.u16(0x3c)? as u64)
    } else {
        (
            r.u32(0x20)? as u64,
            r.u16(0x2e)? as u64,
            r.u16(0x30)? as u64,
        )
    };
    let section = |i: u64| -> Option<(u32, u64, u64, u32)> {
        let base = shoff.checked_add(i.checked_mul(shentsize)?)? as usize;
        // (type, offset, size, link)
        if wide {
            Some((
                r.u32(base + 4)?,
                r.u64(base + 0x18)?,
                r.u64(base + 0x20)?,
                r.u32(base + 0x28)?,
            ))
        } else {
            Some((
                r.u32(base + 4)?,
                r.u32(base + 0x10)? as u64,
                r.u32(base + 0x14)? as u64,
                r.u32(base + 0x18)?,
            ))
        }
    };
    const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
    let mut glibc = None;
    for i in 0..shnum {
        let (kind, off, size, link) = section(i)?;
        if kind != SHT_GNU_VERNEED {
            continue;
        }
        let (_, str_off, str_size, _) = section(link as u64)?;
        let strings = data.get(str_off as usize..(str_off + str_size) as usize)?;
        let end = (off + size) as usize;
        let mut need = off as usize;
        // Elf_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
        while need + 16 <= end {
            let count = r.u16(need + 2)?;
            let mut aux = need + r.u32(need + 8)? as usize;
            for _ in 0..count {
                // Elf_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
                let name = cstr(strings, r.u32(aux + 8)? as usize)?;
                if let Some(v) = parse_glibc(name) {
                    glibc = glibc.max(Some(v));
                }
                let next = r.u32(aux + 12)? as usize;
                if next == 0 {
                    break;
                }
                aux += next;
            }
            let next = r.u32(need + 12)? as usize;
            if next == 0 {
                break;
            }
            need += next;
        }
    }
    Some(Needs {
        arch: machine_name(machine),
        glibc,
    })
}

/// `GLIBC_2.17` → (2, 17).
fn parse_glibc(name: &[u8]) -> Option<(u32, u32)> {
    let v = std::str::from_utf8(name.strip_prefix(b"GLIBC_")?).ok()?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// The glibc version in what a host reported (`glibc 2.17`, `ldd (GNU libc) 2.17`); `None`
/// for musl, BusyBox or an unknown C library.
pub fn host_glibc(libc: &str) -> Option<(u32, u32)> {
    let l = libc.to_ascii_lowercase();
    if !(l.contains("glibc") || l.contains("gnu libc") || l.contains("gnu c library")) {
        return None;
    }
    let word = libc
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .rfind(|w| w.contains('.') && w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = word.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// `uname -m` for an ELF `e_machine`.
fn machine_name(m: u16) -> String {
    match m {
        3 => "i686".into(),
        40 => "armv7l".into(),
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        21 => "ppc64le".into(),
        22 => "s390x".into(),
        243 => "riscv64".into(),
        other => format!("machine {other}"),
    }
}

/// Host names for one machine: `arm64` is `aarch64`, `amd64` is `x86_64`, any x86 is `i686`.
pub fn normalize_arch(uname: &str) -> &str {
    match uname {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        "i386" | "i486" | "i586" | "i686" | "x86" => "i686",
        "armv6l" | "armv7l" | "armv8l" => "armv7l",
        other => other,
    }
}

fn cstr(strings: &[u8], at: usize) -> Option<&[u8]> {
    let s = strings.get(at..)?;
    Some(&s[..s.iter().position(|&b| b == 0)?])
}

struct Reader<'a> {
    data: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.data.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: usize) -> Option<u16> {
        let b = self.bytes(at)?;
        Some(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let b = self.bytes(at)?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, at: usize) -> Option<u64> {
        let b = self.bytes(at)?;
        Some(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
}
