//! The inbound SMS webhook, pure parts: the signature header and the reply text.
//!
//! `X-Mandat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
//! accepted within 5 minutes. `OUI <code>` accepts, `NON` refuses, anything else is ignored.

use crate::crypto::ct_eq;

/// How far a signature's timestamp may be from now, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature header")]
    Malformed,
    #[error("stale signature")]
    Stale,
    #[error("bad signature")]
    Bad,
}

/// Checks the header against the raw body; returns the signature bytes (the replay key).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<Vec<u8>, SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    if t.is_empty() || t.len() > 12 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let ts: i64 = t.parse().map_err(|_| SignatureError::Malformed)?;
    let given = hex::decode(v1).map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    if now_unix.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(t.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let expected = ctx.sign();
    if ct_eq(expected.as_ref(), &given) {
        Ok(given)
    } else {
        Err(SignatureError::Bad)
    }
}

/// What the usager answered.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    Accept { code: String },
    Refuse,
    Other,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Accept { .. } => "Accept([redacted])",
            Self::Refuse => "Refuse",
            Self::Other => "Other",
        })
    }
}

/// Parses a reply: `OUI 123456` (case and spacing free; `OUI` alone is not enough), `NON`.
pub fn parse_reply(text: &str) -> Reply {
    let text = text.trim();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("").to_uppercase();
    let rest: String = words.collect::<Vec<_>>().join("");
    match first.as_str() {
        "OUI" if !rest.is_empty() => Reply::Accept { code: rest },
        "NON" if rest.is_empty() => Reply::Refuse,
        _ => Reply::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let msg = [t.to_string().as_bytes(), b".", body].concat();
        format!(
            "t={t},v1={}",
            hex::encode(ring::hmac::sign(&key, &msg).as_ref())
        )
    }

    #[test]
    fn signatures() {
        let body = br#"{"from":"+33612345678","body":"OUI 123456"}"#;
        let h = sign(b"s3cret", 1_000_000, body);
        assert!(verify(b"s3cret", &h, body, 1_000_000).is_ok());
        assert!(verify(b"s3cret", &h, body, 1_000_300).is_ok());
        assert_eq!(
            verify(b"s3cret", &h, body, 1_000_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"other", &h, body, 1_000_000),
            Err(SignatureError::Bad)
        );
        assert_eq!(
            verify(b"s3cret", &h, b"{}", 1_000_000),
            Err(SignatureError::Bad)
        );
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "t=1,v1=00"] {
            assert_eq!(
                verify(b"s3cret", bad, body, 1),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply(" oui 123 456 "),
            Reply::Accept {
                code: "123456".into()
            }
        );
        assert_eq!(parse_reply("OUI"), Reply::Other, "the code is required");
        assert_eq!(parse_reply("non"), Reply::Refuse);
        assert_eq!(parse_reply("Non merci"), Reply::Other);
        assert_eq!(parse_reply("STOP"), Reply::Other);
        assert!(!format!("{:?}", parse_reply("OUI 123456")).contains("123456"));
    }

    proptest! {
        #[test]
        fn never_panics(h in "\\PC{0,80}", b in "\\PC{0,80}", now in any::<i64>()) {
            let _ = verify(b"k", &h, b.as_bytes(), now);
            let _ = parse_reply(&b);
        }
    }
}
