//! The key hierarchy: one master key (outside the database) → HKDF-SHA256 purpose keys with
//! versions (`vault/v1`, `pii/v1`, `index/v1`, `code/v1`, `audit-signing/v1`, …).

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hkdf;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::CryptoError;

const HKDF_SALT: &[u8] = b"mandat key hierarchy v1";

/// What a derived key is for. Keys of different purposes or versions are independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Wraps the data keys of vault entries.
    Vault,
    /// Wraps the data keys of usagers' personal data.
    Pii,
    /// Keys the blind index of usager search.
    Index,
    /// Keys the HMAC of consent codes and other short codes.
    Code,
    /// Seeds the Ed25519 key signing audit checkpoints.
    AuditSigning,
    /// Keys HMACs of tokens (sessions, invitations) and IPs in audit details.
    Token,
    /// Wraps OIDC signing keys and TOTP seeds of accounts.
    Secrets,
}

impl Purpose {
    pub fn label(self) -> &'static str {
        match self {
            Self::Vault => "vault",
            Self::Pii => "pii",
            Self::Index => "index",
            Self::Code => "code",
            Self::AuditSigning => "audit-signing",
            Self::Token => "token",
            Self::Secrets => "secrets",
        }
    }
}

/// 32 bytes of master key material, zeroized on drop, never printed.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Standard padded base64 of exactly 32 bytes.
    pub fn from_base64(s: &SecretString) -> Result<Self, String> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(s.expose_secret().trim())
                .map_err(|_| "expected standard base64 of 32 bytes".to_owned())?,
        );
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("expected 32 bytes, got {}", bytes.len()))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        super::tokens::fill_random(k.as_mut())?;
        Ok(Self(k))
    }

    fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// Reads the key file, or creates it (mode 0600) when absent. Returns whether it was created.
    pub fn load_or_create_file(path: &Path) -> anyhow::Result<(Self, bool)> {
        use anyhow::Context as _;
        match read_private(path) {
            Ok(mut text) => {
                let key = Self::from_base64(&SecretString::from(std::mem::take(&mut *text)))
                    .map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))?;
                Ok((key, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    opts.mode(0o600);
                }
                let mut f = opts
                    .open(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                f.write_all(key.to_base64().as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_all()?;
                Ok((key, true))
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Reads a key file that only its owner may read or write: a file with any permission for
/// group or others is refused (the key would no longer be a secret of this service).
fn read_private(path: &Path) -> std::io::Result<Zeroizing<String>> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = f.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} is accessible by group or others (mode {mode:03o}): allow its owner only (chmod 600)",
                    path.display()
                ),
            ));
        }
    }
    let mut text = Zeroizing::new(String::new());
    f.read_to_string(&mut text)?;
    Ok(text)
}

/// A derived 256-bit key of one purpose and version.
pub struct PurposeKey {
    pub purpose: Purpose,
    pub version: u32,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for PurposeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PurposeKey({}/v{}, [redacted])",
            self.purpose.label(),
            self.version
        )
    }
}

impl PurposeKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// HMAC-SHA256 under this key.
    pub fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.bytes.as_ref());
        let mut ctx = ring::hmac::Context::with_key(&key);
        for p in parts {
            // Length-prefix every part so that ("ab","c") and ("a","bc") differ.
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// Derives purpose keys from the master key. Cheap to clone behind an `Arc`.
pub struct Keyring {
    master: MasterKey,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring([redacted])")
    }
}

impl Keyring {
    pub fn new(master: MasterKey) -> Self {
        Self { master }
    }

    /// The key `<purpose>/v<version>`; version 0 does not exist.
    pub fn key(&self, purpose: Purpose, version: u32) -> Result<PurposeKey, CryptoError> {
        if version == 0 {
            return Err(CryptoError::UnknownKeyVersion);
        }
        let info = format!("{}/v{version}", purpose.label());
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(self.master.0.as_ref());
        let info_parts = [info.as_bytes()];
        let okm = prk
            .expand(&info_parts, Len32)
            .map_err(|_| CryptoError::Malformed)?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        okm.fill(bytes.as_mut())
            .map_err(|_| CryptoError::Malformed)?;
        Ok(PurposeKey {
            purpose,
            version,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(MasterKey(Zeroizing::new([7u8; 32])))
    }

    #[test]
    fn purposes_and_versions_give_distinct_keys() {
        let r = ring();
        let a = r.key(Purpose::Vault, 1).unwrap();
        let b = r.key(Purpose::Vault, 2).unwrap();
        let c = r.key(Purpose::Pii, 1).unwrap();
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        assert_eq!(
            a.bytes(),
            r.key(Purpose::Vault, 1).unwrap().bytes(),
            "deterministic"
        );
        assert!(r.key(Purpose::Vault, 0).is_err());
    }

    #[test]
    fn debug_does_not_leak() {
        let r = ring();
        let k = r.key(Purpose::Code, 1).unwrap();
        let hexed = hex::encode(k.bytes());
        for s in [
            format!("{r:?}"),
            format!("{k:?}"),
            format!("{:?}", r.master),
        ] {
            assert!(s.contains("redacted"));
            assert!(!s.contains(&hexed[..8]));
            assert!(!s.contains("7, 7"));
        }
    }

    #[test]
    fn key_file_is_created_private_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mandat.keys");
        let (k1, created) = MasterKey::load_or_create_file(&p).unwrap();
        assert!(created);
        let (k2, created) = MasterKey::load_or_create_file(&p).unwrap();
        assert!(!created);
        assert_eq!(k1.0.as_ref(), k2.0.as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mandat.keys");
        MasterKey::load_or_create_file(&p).unwrap();
        for mode in [0o640, 0o604, 0o620] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = format!("{:#}", MasterKey::load_or_create_file(&p).unwrap_err());
            assert!(e.contains("group or others"), "{mode:o}: {e}");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(!MasterKey::load_or_create_file(&p).unwrap().1);
    }

    #[test]
    fn hmac_parts_are_length_prefixed() {
        let k = ring().key(Purpose::Code, 1).unwrap();
        assert_ne!(k.hmac(&[b"ab", b"c"]), k.hmac(&[b"a", b"bc"]));
    }
}
