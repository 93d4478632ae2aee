//! Extractors that turn bad input into problem+json: JSON bodies (415, 413, 400 with the
//! field), and the request id.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::FieldError;
use crate::error::AppError;

/// A JSON body: `Content-Type: application/json` required, unknown fields refused by the
/// target types (`deny_unknown_fields`), errors never echo the submitted values.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::InvalidRequest {
                    detail: "Corps de requête illisible.".into(),
                    errors: vec![],
                }
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON into `T`, reporting the failing field without echoing values.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return AppError::InvalidRequest {
                detail: "JSON mal formé.".into(),
                errors: vec![],
            };
        }
        let text = inner.to_string();
        let (field, message) = if text.starts_with("unknown field `") {
            (path, "Champ inconnu.")
        } else if let Some(rest) = text.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or("");
            let full = if path == "." || path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            (full, "Champ obligatoire manquant.")
        } else if text.starts_with("unknown variant") {
            (path, "Valeur non reconnue.")
        } else {
            (path, "Type ou format de valeur invalide.")
        };
        let field: String = field
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        AppError::InvalidRequest {
            detail: "Le corps de la requête ne correspond pas au format attendu.".into(),
            errors: vec![FieldError {
                field,
                message: message.into(),
            }],
        }
    })?;
    de.end().map_err(|_| AppError::InvalidRequest {
        detail: "JSON mal formé.".into(),
        errors: vec![],
    })?;
    Ok(value)
}

/// The request id set by the request-id layer.
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        age: u32,
    }

    fn errors(e: AppError) -> Vec<FieldError> {
        match e {
            AppError::InvalidRequest { errors, .. } => errors,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reports_field_without_value() {
        let e = errors(
            parse_json::<Body>(br#"{"name":"Secret Name","age":"Jean Dupont"}"#).unwrap_err(),
        );
        assert_eq!(e[0].field, "age");
        assert!(!format!("{e:?}").contains("Jean"));
        let e = errors(parse_json::<Body>(br#"{"name":"a","age":1,"extra":2}"#).unwrap_err());
        assert_eq!(e[0].field, "extra");
        assert_eq!(e[0].message, "Champ inconnu.");
        let e = errors(parse_json::<Body>(br#"{"name":"a"}"#).unwrap_err());
        assert_eq!(e[0].field, "age");
        assert!(errors(parse_json::<Body>(b"{").unwrap_err()).is_empty());
        assert!(parse_json::<Body>(br#"{"name":"a","age":1} x"#).is_err());
    }
}
