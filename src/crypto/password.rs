//! Password hashing: argon2id (m = 19 MiB, t = 2, p = 1 at least; PHC strings keep the
//! parameters so they can be raised), run off the async threads, at most one hash per core
//! at a time, and a dummy verification for unknown accounts.

use std::sync::Arc;

use argon2::password_hash::{
    PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Verified against when the account is unknown or has no password yet: same parameters as
/// real hashes, so the answer takes as long. A constant, so start-up computes nothing.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$a9EnSv/pWYwpGBFMy8RWsQ$V7e6XJ6yQrzcC3eCRgvKEwxq7Dw9tlpDg159o96GFRg";

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher")
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Hashes a new password (PHC string).
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| hash_blocking(&password))).await?
    }

    /// Verifies a password against a stored hash; `None` (unknown account, no password yet)
    /// still costs one verification against a dummy hash.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (target, real) = match stored {
            Some(h) => (h, true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let span = tracing::Span::current();
        let ok = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                PasswordHash::new(&target)
                    .map(|parsed| {
                        argon2()
                            .verify_password(password.expose_secret().as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
        })
        .await
        .unwrap_or(false);
        ok && real
    }
}

fn hash_blocking(password: &SecretString) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new();
        let pw = || SecretString::from("cheval agrafe pile 42".to_owned());
        let stored = h.hash(pw()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!stored.contains("cheval"));
        assert!(h.verify(pw(), Some(stored.clone())).await);
        assert!(
            !h.verify(
                SecretString::from("autre chose 1234".to_owned()),
                Some(stored)
            )
            .await
        );
        assert!(
            !h.verify(pw(), None).await,
            "unknown account never verifies"
        );
        assert!(!h.verify(pw(), Some("garbage".into())).await);
    }
}
