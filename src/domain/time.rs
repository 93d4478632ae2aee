//! Timestamps as the API and the audit log write them: RFC 3339 in UTC with exactly six
//! fractional digits and `Z` (`2026-12-01T09:30:00.000000Z`). One function for the text,
//! and serde helpers (`#[serde(with = "crate::domain::time")]`, or `time::option` for an
//! `Option`) so that views hold a typed `DateTime<Utc>` and are written the same way.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize as _, Deserializer, Serializer};

/// The one text form of a timestamp.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    DateTime::<Utc>::deserialize(d)
}

/// The same for an optional timestamp (`null` when absent).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct View {
        #[serde(with = "super")]
        at: DateTime<Utc>,
        #[serde(with = "super::option")]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn six_fractional_digits_and_z_both_ways() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap()
            + chrono::Duration::microseconds(42);
        assert_eq!(format(at), "2026-12-01T09:30:00.000042Z");
        let v = View { at, until: None };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"at":"2026-12-01T09:30:00.000042Z","until":null}"#);
        assert_eq!(serde_json::from_str::<View>(&json).unwrap(), v);
        // Whole seconds still carry six digits (the audit format).
        assert_eq!(
            format(Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap()),
            "2026-12-01T09:30:00.000000Z"
        );
    }
}
