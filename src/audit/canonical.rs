//! RFC 8785 (JCS) canonical JSON for audit events.
//!
//! Events hold only objects, arrays, strings, integers, booleans and null: floating-point
//! numbers are refused. Object keys are sorted by UTF-16 code units; strings are escaped as
//! JCS requires (which is what `serde_json` does for strings: `\b \t \n \f \r \" \\`, other
//! control characters as lowercase `\u00xx`, everything else as UTF-8).

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("floating-point numbers are not allowed in audit events")]
    Float,
}

/// The canonical text of a JSON value.
pub fn to_canonical(v: &Value) -> Result<String, CanonicalError> {
    let mut out = String::with_capacity(256);
    write(v, &mut out)?;
    Ok(out)
}

fn write(v: &Value, out: &mut String) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(CanonicalError::Float);
            }
            out.push_str(&n.to_string());
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(&map[k], out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_str(s: &str, out: &mut String) {
    // serde_json's string escaping is exactly JCS's for the characters that need escaping.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fixed_vectors() {
        // RFC 8785 §3.2.3 sorting example (without its floating-point members).
        let v: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        assert_eq!(
            to_canonical(&v).unwrap(),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(
            to_canonical(&json!({"b":[1,true,null,"\u{1f}é"],"a":{"z":-5,"y":"\"/\\"}})).unwrap(),
            r#"{"a":{"y":"\"/\\","z":-5},"b":[1,true,null,"\u001fé"]}"#
        );
        assert_eq!(to_canonical(&json!({"n": 1.5})), Err(CanonicalError::Float));
    }

    #[test]
    fn equals_python_sorted_compact_dumps() {
        let Ok(out) = std::process::Command::new("python3")
            .args(["-c", "import json,sys; e=json.load(sys.stdin); sys.stdout.write(json.dumps(e, sort_keys=True, separators=(',',':'), ensure_ascii=False))"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                let ev = r#"{"v":1,"index":41,"ts":"2026-11-23T10:15:02.123456Z","action":"mandate.activated","actor":{"kind":"aidant","id":"0193a"},"organisation":"0193b","usager":null,"mandate":"0193c","target":null,"request_id":"r-\u0007é","details":{"demarches":["social","argent"],"terms_hash":"ab12"}}"#;
                child.stdin.take().unwrap().write_all(ev.as_bytes())?;
                child.wait_with_output()
            })
        else {
            panic!("python3 is required by this test (installed by .ci/run)");
        };
        let ev: Value = serde_json::from_str(r#"{"v":1,"index":41,"ts":"2026-11-23T10:15:02.123456Z","action":"mandate.activated","actor":{"kind":"aidant","id":"0193a"},"organisation":"0193b","usager":null,"mandate":"0193c","target":null,"request_id":"r-\u0007é","details":{"demarches":["social","argent"],"terms_hash":"ab12"}}"#).unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            to_canonical(&ev).unwrap()
        );
    }
}
