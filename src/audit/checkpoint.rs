//! Signed checkpoints (signed tree heads) in the C2SP `tlog-checkpoint` / `signed-note`
//! format, signed with Ed25519 by a key derived from the master key, and the witness file.
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root>\n<timestamp RFC 3339>\n
//! \n
//! — <origin> <base64(key id ‖ signature)>\n
//! ```
//! The key id is the first 4 bytes of SHA-256(`<origin>\n` ‖ 0x01 ‖ public key).

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::merkle::Hash;
use crate::crypto::{Keyring, Purpose, sha256};

/// Ed25519 algorithm byte of signed-note keys.
const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("malformed signed note: {0}")]
    Malformed(&'static str),
    #[error("no valid signature by a known key")]
    BadSignature,
}

/// The body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash,
    pub timestamp: String,
}

impl Checkpoint {
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n",
            self.origin,
            self.tree_size,
            STANDARD.encode(self.root),
            self.timestamp
        )
    }
}

/// A checkpoint-signing public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub version: u32,
    pub bytes: [u8; 32],
}

impl PublicKey {
    /// signed-note key id for a key name.
    pub fn key_id(&self, name: &str) -> [u8; 4] {
        key_id(name, &self.bytes)
    }

    /// The signed-note verifier key `<name>+<hex id>+<base64(0x01 ‖ key)>`.
    pub fn vkey(&self, name: &str) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(&self.bytes);
        format!(
            "{name}+{}+{}",
            hex::encode(self.key_id(name)),
            STANDARD.encode(k)
        )
    }
}

pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut data = Vec::with_capacity(name.len() + 34);
    data.extend_from_slice(name.as_bytes());
    data.push(b'\n');
    data.push(ALG_ED25519);
    data.extend_from_slice(public);
    let h = sha256(&data);
    [h[0], h[1], h[2], h[3]]
}

/// The private signing key (derived from the keyring; never stored, never printed).
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pub public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(v{}, [redacted])", self.public.version)
    }
}

impl SigningKey {
    pub fn derive(keyring: &Keyring, version: u32) -> Result<Self, crate::crypto::CryptoError> {
        let seed = keyring.key(Purpose::AuditSigning, version)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.bytes())
            .map_err(|_| crate::crypto::CryptoError::Malformed)?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(pair.public_key().as_ref());
        Ok(Self {
            pair,
            public: PublicKey { version, bytes },
        })
    }

    /// The full signed note for a checkpoint.
    pub fn sign(&self, cp: &Checkpoint) -> String {
        let body = cp.body();
        let sig = self.pair.sign(body.as_bytes());
        let mut blob = self.public.key_id(&cp.origin).to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!(
            "{body}\n{SIG_PREFIX}{} {}\n",
            cp.origin,
            STANDARD.encode(blob)
        )
    }
}

/// The public keys of these versions of the checkpoint-signing key.
pub fn public_keys(keyring: &Keyring, versions: &[u32]) -> Vec<PublicKey> {
    versions
        .iter()
        .filter_map(|&v| SigningKey::derive(keyring, v).ok().map(|k| k.public))
        .collect()
}

/// A parsed signed note: its checkpoint and signature lines `(name, key id, signature)`.
#[derive(Debug, Clone)]
pub struct SignedNote {
    pub text: String,
    pub checkpoint: Checkpoint,
    body_len: usize,
    signatures: Vec<(String, [u8; 4], Vec<u8>)>,
}

impl SignedNote {
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let split = text
            .find("\n\n")
            .ok_or(NoteError::Malformed("no blank line"))?;
        let body = &text[..=split];
        let mut lines = body.lines();
        let origin = lines.next().ok_or(NoteError::Malformed("origin"))?;
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or(NoteError::Malformed("tree size"))?;
        let root: Hash = lines
            .next()
            .and_then(|l| STANDARD.decode(l).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or(NoteError::Malformed("root hash"))?;
        let timestamp = lines.next().unwrap_or_default().to_owned();
        if origin.is_empty() {
            return Err(NoteError::Malformed("origin"));
        }
        let mut signatures = Vec::new();
        for line in text[split + 2..].lines() {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or(NoteError::Malformed("signature line"))?;
            let (name, b64) = rest
                .rsplit_once(' ')
                .ok_or(NoteError::Malformed("signature line"))?;
            let blob = STANDARD
                .decode(b64)
                .map_err(|_| NoteError::Malformed("signature encoding"))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed("signature length"));
            }
            let id = [blob[0], blob[1], blob[2], blob[3]];
            signatures.push((name.to_owned(), id, blob[4..].to_vec()));
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature"));
        }
        Ok(Self {
            text: text.to_owned(),
            checkpoint: Checkpoint {
                origin: origin.to_owned(),
                tree_size: size,
                root,
                timestamp,
            },
            body_len: split + 1,
            signatures,
        })
    }

    /// Ok when at least one signature line verifies under one of `keys`.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<(), NoteError> {
        let body = &self.text.as_bytes()[..self.body_len];
        for (name, id, sig) in &self.signatures {
            for k in keys {
                if k.key_id(name) == *id
                    && UnparsedPublicKey::new(&ED25519, &k.bytes)
                        .verify(body, sig)
                        .is_ok()
                {
                    return Ok(());
                }
            }
        }
        Err(NoteError::BadSignature)
    }
}

/// One line of the witness file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessRecord {
    pub tree_size: u64,
    pub root_hash: String,
    pub timestamp: String,
    pub note: String,
}

/// Appends one record to the witness file (created if absent, append only, synced).
pub fn append_witness(path: &Path, record: &WitnessRecord) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&line)?;
    f.sync_data()
}

/// The checkpoints held in a file outside the database: a witness file (JSON lines; every
/// line is returned, the last one being the newest) or a file holding one signed note.
pub fn read_external(path: &Path) -> Result<Vec<SignedNote>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_external(&text, &path.display().to_string())
}

/// The checkpoints of a witness file's or a signed note's text (see [`read_external`]);
/// `label` names the source in error messages.
pub fn parse_external(text: &str, label: &str) -> Result<Vec<SignedNote>, String> {
    if text.trim_start().starts_with('{') {
        let mut out = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let rec: WitnessRecord =
                serde_json::from_str(line).map_err(|e| format!("{label} line {}: {e}", n + 1))?;
            let note =
                SignedNote::parse(&rec.note).map_err(|e| format!("{label} line {}: {e}", n + 1))?;
            if note.checkpoint.tree_size != rec.tree_size
                || hex::encode(note.checkpoint.root) != rec.root_hash
            {
                return Err(format!(
                    "{label} line {}: the record does not match its note",
                    n + 1
                ));
            }
            out.push(note);
        }
        Ok(out)
    } else {
        SignedNote::parse(text)
            .map(|n| vec![n])
            .map_err(|e| format!("{label}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use secrecy::SecretString;

    fn keyring(byte: u8) -> Keyring {
        let b64 = STANDARD.encode([byte; 32]);
        Keyring::new(MasterKey::from_base64(&SecretString::from(b64)).unwrap())
    }

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "mandat.example/audit".into(),
            tree_size: 42,
            root: [7u8; 32],
            timestamp: "2026-11-23T10:15:02.123456Z".into(),
        }
    }

    #[test]
    fn signs_and_verifies_a_note() {
        let key = SigningKey::derive(&keyring(1), 1).unwrap();
        let note = key.sign(&cp());
        assert!(note.starts_with("mandat.example/audit\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n2026-11-23T10:15:02.123456Z\n\n\u{2014} mandat.example/audit "));
        let parsed = SignedNote::parse(&note).unwrap();
        assert_eq!(parsed.checkpoint, cp());
        parsed.verify(std::slice::from_ref(&key.public)).unwrap();
        // Another key, or a changed body, does not verify.
        let other = SigningKey::derive(&keyring(2), 1).unwrap();
        assert_eq!(parsed.verify(&[other.public]), Err(NoteError::BadSignature));
        let forged = note.replace("\n42\n", "\n43\n");
        assert_eq!(
            SignedNote::parse(&forged)
                .unwrap()
                .verify(std::slice::from_ref(&key.public)),
            Err(NoteError::BadSignature)
        );
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn key_id_and_vkey_follow_signed_note() {
        let key = SigningKey::derive(&keyring(1), 1).unwrap();
        let name = "mandat.example/audit";
        let mut data = format!("{name}\n").into_bytes();
        data.push(1);
        data.extend_from_slice(&key.public.bytes);
        assert_eq!(key.public.key_id(name), sha256(&data)[..4]);
        let vkey = key.public.vkey(name);
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(parts[0], name);
        assert_eq!(parts[1], hex::encode(key.public.key_id(name)));
        assert_eq!(STANDARD.decode(parts[2]).unwrap()[0], 1);
    }

    #[test]
    fn witness_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.jsonl");
        let key = SigningKey::derive(&keyring(1), 1).unwrap();
        for size in [1u64, 5] {
            let c = Checkpoint {
                tree_size: size,
                ..cp()
            };
            let note = key.sign(&c);
            append_witness(
                &path,
                &WitnessRecord {
                    tree_size: size,
                    root_hash: hex::encode(c.root),
                    timestamp: c.timestamp.clone(),
                    note,
                },
            )
            .unwrap();
        }
        let notes = read_external(&path).unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[1].checkpoint.tree_size, 5);
        let single = dir.path().join("note.txt");
        std::fs::write(&single, &notes[0].text).unwrap();
        assert_eq!(read_external(&single).unwrap()[0].checkpoint.tree_size, 1);
        std::fs::write(&single, "garbage").unwrap();
        assert!(read_external(&single).is_err());
    }
}
