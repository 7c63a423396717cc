//! libgcrypt's keygrip of an elliptic-curve key, as `gpg --with-keygrip` prints it and as
//! GnuPG's agent names its key files (`private-keys-v1.d/KEYGRIP.key`).
//!
//! Read from libgcrypt's `cipher/ecc.c` (`compute_keygrip`) and `cipher/ecc-curves.c`
//! (`_gcry_ecc_update_curve_param`, `domain_parms`, `curve_aliases`): SHA-1 over six
//! canonical S-expression items `(1:p<len>:<bytes>)`, `a`, `b`, `g`, `n`, `q`, in that order.
//! `p`, `a`, `b`, `n` are the curve's parameters as unsigned big-endian integers without
//! leading zero bytes (the magnitude: Ed25519's `a = -1` is hashed as `01`); `g` is `04 ‖ x ‖
//! y` of the base point as the table writes its coordinates; `q` is the public point as the key
//! holds it, except that an EdDSA key on Ed25519 (`flags eddsa`) and a key with `flags
//! djb-tweak` (Curve25519) drop their one-octet `0x40` prefix. Only public values are read.

use sha1::{Digest, Sha1};

/// One curve of libgcrypt's table.
struct Curve {
    /// libgcrypt's name (what GnuPG writes into an agent key's `(curve …)`).
    name: &'static str,
    /// Other names and OIDs libgcrypt takes for it.
    aliases: &'static [&'static str],
    p: &'static str,
    a: &'static str,
    b: &'static str,
    n: &'static str,
    g_x: &'static str,
    g_y: &'static str,
}

/// libgcrypt's domain parameters (`cipher/ecc-curves.c`, `domain_parms`) of the curves GnuPG
/// makes keys on, as written there: `p`, `a`, `b`, `n`, `g_x`, `g_y` in hex (a leading `-`
/// kept: the keygrip hashes the magnitude), and the names and OIDs that libgcrypt takes for each
/// (`curve_aliases`).
const CURVES: &[Curve] = &[
    Curve {
        name: "Ed25519",
        aliases: &["1.3.6.1.4.1.11591.15.1", "1.3.101.112"],
        p: "0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED",
        a: "-0x01",
        b: "-0x2DFC9311D490018C7338BF8688861767FF8FF5B2BEBE27548A14B235ECA6874A",
        n: "0x1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED",
        g_x: "0x216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A",
        g_y: "0x6666666666666666666666666666666666666666666666666666666666666658",
    },
    Curve {
        name: "Curve25519",
        aliases: &["1.3.6.1.4.1.3029.1.5.1", "1.3.101.110", "X25519"],
        p: "0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED",
        a: "0x01DB41",
        b: "0x01",
        n: "0x1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED",
        g_x: "0x0000000000000000000000000000000000000000000000000000000000000009",
        g_y: "0x20AE19A1B8A086B4E01EDD2C7748D14C923D4D7E6D7C61B229E9C5A27ECED3D9",
    },
    Curve {
        name: "NIST P-256",
        aliases: &["1.2.840.10045.3.1.7", "prime256v1", "secp256r1", "nistp256"],
        p: "0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
        a: "0xffffffff00000001000000000000000000000000fffffffffffffffffffffffc",
        b: "0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
        n: "0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        g_x: "0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        g_y: "0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    },
    Curve {
        name: "NIST P-384",
        aliases: &["secp384r1", "1.3.132.0.34", "nistp384"],
        p: "0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
        a: "0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc",
        b: "0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
        n: "0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
        g_x: "0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
        g_y: "0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    },
    Curve {
        name: "NIST P-521",
        aliases: &["secp521r1", "1.3.132.0.35", "nistp521"],
        p: "0x01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        a: "0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc",
        b: "0x051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
        n: "0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
        g_x: "0x00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
        g_y: "0x011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
    },
    Curve {
        name: "brainpoolP256r1",
        aliases: &["1.3.36.3.3.2.8.1.1.7", "bp256"],
        p: "0xa9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377",
        a: "0x7d5a0975fc2c3057eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9",
        b: "0x26dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b6",
        n: "0xa9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7",
        g_x: "0x8bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262",
        g_y: "0x547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997",
    },
    Curve {
        name: "brainpoolP384r1",
        aliases: &["1.3.36.3.3.2.8.1.1.11", "bp384"],
        p: "0x8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b412b1da197fb71123acd3a729901d1a71874700133107ec53",
        a: "0x7bc382c63d8c150c3c72080ace05afa0c2bea28e4fb22787139165efba91f90f8aa5814a503ad4eb04a8c7dd22ce2826",
        b: "0x04a8c7dd22ce28268b39b55416f0447c2fb77de107dcd2a62e880ea53eeb62d57cb4390295dbc9943ab78696fa504c11",
        n: "0x8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b31f166e6cac0425a7cf3ab6af6b7fc3103b883202e9046565",
        g_x: "0x1d1c64f068cf45ffa2a63a81b7c13f6b8847a3e77ef14fe3db7fcafe0cbd10e8e826e03436d646aaef87b2e247d4af1e",
        g_y: "0x8abe1d7520f9c2a45cb1eb8e95cfd55262b70b29feec5864e19c054ff99129280e4646217791811142820341263c5315",
    },
    Curve {
        name: "brainpoolP512r1",
        aliases: &["1.3.36.3.3.2.8.1.1.13", "bp512"],
        p: "0xaadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca703308717d4d9b009bc66842aecda12ae6a380e62881ff2f2d82c68528aa6056583a48f3",
        a: "0x7830a3318b603b89e2327145ac234cc594cbdd8d3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94ca",
        b: "0x3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94cadc083e67984050b75ebae5dd2809bd638016f723",
        n: "0xaadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330870553e5c414ca92619418661197fac10471db1d381085ddaddb58796829ca90069",
        g_x: "0x81aee4bdd82ed9645a21322e9c4c6a9385ed9f70b5d916c1b43b62eef4d0098eff3b1f78e2d0d48d50d1687b93b97d5f7c6d5047406a5e688b352209bcb9f822",
        g_y: "0x7dde385d566332ecc0eabfa9cf7822fdf209f70024a57b1aa000c55b881f8111b2dcde494a5f485e5bca4bd88a2763aed1ca2b2fa8f0540678cd1e0f3ad80892",
    },
    Curve {
        name: "secp256k1",
        aliases: &["1.3.132.0.10"],
        p: "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F",
        a: "0x0000000000000000000000000000000000000000000000000000000000000000",
        b: "0x0000000000000000000000000000000000000000000000000000000000000007",
        n: "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
        g_x: "0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798",
        g_y: "0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8",
    },
];

/// How the public point is written into the keygrip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointForm {
    /// As the key holds it (ECDSA, ECDH on NIST and Brainpool curves: `04 ‖ x ‖ y`).
    AsHeld,
    /// `flags eddsa` on Ed25519: an `0x40` prefix dropped (a compressed EdDSA point).
    EddsaCompact,
    /// `flags djb-tweak` (Curve25519): an `0x40` prefix dropped.
    DjbTweak,
}

/// libgcrypt's name of `curve` (its name, an alias or an OID in dotted form), if it is one
/// of the curves the keygrip is computed for.
pub fn curve_name(curve: &str) -> Option<&'static str> {
    let c = curve.trim();
    CURVES
        .iter()
        .find(|k| {
            k.name.eq_ignore_ascii_case(c) || k.aliases.iter().any(|a| a.eq_ignore_ascii_case(c))
        })
        .map(|k| k.name)
}

/// The keygrip of the public point `q` on `curve` (a name [`curve_name`] knows), uppercase hex;
/// `None` for a curve not in the table or a point that cannot be one (empty).
pub fn ecc_keygrip(curve: &str, form: PointForm, q: &[u8]) -> Option<String> {
    let name = curve_name(curve)?;
    let c = CURVES.iter().find(|k| k.name == name)?;
    if q.is_empty() {
        return None;
    }
    // `_gcry_ecc_eddsa_ensure_compact` and the djb-tweak branch: an odd length over one octet
    // starting with 0x40 loses that octet. (An uncompressed `04` EdDSA point, which GnuPG does
    // not write, would be compressed there: not computed here.)
    let q = match form {
        PointForm::EddsaCompact if name == "Ed25519" && q.len() > 1 && q.len() % 2 == 1 => {
            match q[0] {
                0x40 => &q[1..],
                0x04 => return None,
                _ => q,
            }
        }
        PointForm::DjbTweak if q.len() > 1 && q.len() % 2 == 1 && q[0] == 0x40 => &q[1..],
        PointForm::AsHeld if q.len() > 1 && matches!(q[0], 0x02 | 0x03) => {
            // A compressed point: libgcrypt uncompresses it first; GnuPG does not write one.
            return None;
        }
        _ => q,
    };
    let mut g = String::from("04");
    g.push_str(c.g_x.trim_start_matches("0x"));
    g.push_str(c.g_y.trim_start_matches("0x"));
    let mut h = Sha1::new();
    for (tag, value) in [
        ('p', magnitude(c.p)),
        ('a', magnitude(c.a)),
        ('b', magnitude(c.b)),
        ('g', magnitude(&g)),
        ('n', magnitude(c.n)),
    ] {
        item(&mut h, tag, &value);
    }
    item(&mut h, 'q', q);
    Some(crate::parse::hex(&h.finalize()).to_uppercase())
}

/// `(1:T<len>:<bytes>)`, libgcrypt's item as `compute_keygrip` hashes it.
fn item(h: &mut Sha1, tag: char, value: &[u8]) {
    h.update(format!("(1:{tag}{}:", value.len()).as_bytes());
    h.update(value);
    h.update(b")");
}

/// A table value (`0x…`, `-0x…`, or bare hex) as libgcrypt's `_gcry_mpi_get_buffer` gives it:
/// unsigned big-endian bytes of its magnitude, no leading zero byte (zero is empty).
fn magnitude(hex: &str) -> Vec<u8> {
    let h = hex.trim_start_matches('-').trim_start_matches("0x");
    let h = h.trim_start_matches('0');
    let padded = if h.len() % 2 == 1 {
        format!("0{h}")
    } else {
        h.to_owned()
    };
    (0..padded.len() / 2)
        .map(|i| u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_values_are_hex_and_names_resolve() {
        for c in CURVES {
            for v in [c.p, c.a, c.b, c.n, c.g_x, c.g_y] {
                let h = v.trim_start_matches('-').trim_start_matches("0x");
                assert!(h.bytes().all(|b| b.is_ascii_hexdigit()), "{}: {v}", c.name);
            }
            assert_eq!(curve_name(c.name), Some(c.name));
            for a in c.aliases {
                assert_eq!(curve_name(a), Some(c.name));
            }
        }
        assert_eq!(magnitude("-0x01"), vec![1]);
        assert_eq!(magnitude("0x0000"), Vec::<u8>::new());
        assert_eq!(magnitude("0x01DB41"), vec![0x01, 0xdb, 0x41]);
        assert_eq!(curve_name("nistp256"), Some("NIST P-256"));
        assert_eq!(curve_name("curve448"), None);
    }
}
