//! Tests of the configuration: values read from the environment and the file, and their refusals.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_make_a_local_run_work() {
    let c = Config::from_sources(None, &env(&[])).unwrap();
    assert!(matches!(c.database_url, DatabaseUrl::Sqlite(ref u) if u == "sqlite://./mandat.db"));
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.checkpoint_origin, "127.0.0.1:8080/audit");
}

#[test]
fn bad_listen_names_the_variable() {
    let e = Config::from_sources(None, &env(&[("MANDAT_LISTEN", "nonsense")])).unwrap_err();
    assert_eq!(e.var, "MANDAT_LISTEN");
    assert!(e.to_string().contains("MANDAT_LISTEN"));
}

#[test]
fn unknown_variable_is_refused() {
    let e = Config::from_sources(None, &env(&[("MANDAT_LISTNE", "x")])).unwrap_err();
    assert_eq!(e.var, "MANDAT_LISTNE");
}

#[test]
fn bad_master_key_is_refused_without_echoing_it() {
    let e = Config::from_sources(None, &env(&[("MANDAT_MASTER_KEY", "c2hvcnQ=")])).unwrap_err();
    assert_eq!(e.var, "MANDAT_MASTER_KEY");
    assert!(!e.to_string().contains("c2hvcnQ="));
}

#[test]
fn secret_from_file_and_toml_layer() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let toml = dir.path().join("mandat.toml");
    std::fs::write(&toml, "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n").unwrap();
    let c = Config::from_sources(
        Some(&toml),
        &env(&[
            ("MANDAT_MASTER_KEY_FILE", key.to_str().unwrap()),
            ("MANDAT_LOG", "warn"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.log, "warn", "environment wins over the file");
    assert!(c.master_key.is_some());
    std::fs::write(&toml, "lisen = \"x\"\n").unwrap();
    assert_eq!(
        Config::from_sources(Some(&toml), &env(&[]))
            .unwrap_err()
            .var,
        "lisen"
    );
}

#[test]
fn witness_url_is_validated_without_echoing_it() {
    let c = Config::from_sources(
        None,
        &env(&[(
            "MANDAT_CHECKPOINT_WITNESS_URL",
            "https://witness.example/cp",
        )]),
    )
    .unwrap();
    assert_eq!(
        c.checkpoint_witness_url.as_deref(),
        Some("https://witness.example/cp")
    );
    let e = Config::from_sources(
        None,
        &env(&[("MANDAT_CHECKPOINT_WITNESS_URL", "ftp://s3cr3t@host")]),
    )
    .unwrap_err();
    assert_eq!(e.var, "MANDAT_CHECKPOINT_WITNESS_URL");
    assert!(!e.to_string().contains("s3cr3t"));
    let e =
        Config::from_sources(None, &env(&[("MANDAT_CHECKPOINT_WITNESS_TOKEN", "t")])).unwrap_err();
    assert_eq!(e.var, "MANDAT_CHECKPOINT_WITNESS_TOKEN");
}

#[test]
fn an_empty_webhook_secret_is_refused() {
    for v in ["", "  "] {
        let e = Config::from_sources(None, &env(&[("MANDAT_SMS_WEBHOOK_SECRET", v)])).unwrap_err();
        assert_eq!(e.var, "MANDAT_SMS_WEBHOOK_SECRET");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "\n").unwrap();
    let e = Config::from_sources(
        None,
        &env(&[("MANDAT_SMS_WEBHOOK_SECRET_FILE", file.to_str().unwrap())]),
    )
    .unwrap_err();
    assert_eq!(e.var, "MANDAT_SMS_WEBHOOK_SECRET_FILE");
    let c = Config::from_sources(None, &env(&[("MANDAT_SMS_WEBHOOK_SECRET", "k3y")])).unwrap();
    assert!(c.sms_webhook_secret.is_some());
    let c = Config::from_sources(None, &env(&[])).unwrap();
    assert!(c.sms_webhook_secret.is_none(), "unset: the webhook is off");
}

#[test]
fn metrics_address_is_off_by_default_and_validated() {
    let c = Config::from_sources(None, &env(&[])).unwrap();
    assert!(c.metrics_addr.is_none(), "off by default");
    let c = Config::from_sources(None, &env(&[("MANDAT_OIDC_CLIENT_RATE", "50")])).unwrap();
    assert_eq!(c.oidc_client_rate, 50);
    for bad in ["0", "-1", "lots", "1000001"] {
        let e = Config::from_sources(None, &env(&[("MANDAT_OIDC_CLIENT_RATE", bad)])).unwrap_err();
        assert_eq!(e.var, "MANDAT_OIDC_CLIENT_RATE");
    }
    let c = Config::from_sources(None, &env(&[("MANDAT_METRICS_ADDR", "127.0.0.1:9090")])).unwrap();
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9090".parse().unwrap()));
    let e = Config::from_sources(None, &env(&[("MANDAT_METRICS_ADDR", "localhost")])).unwrap_err();
    assert_eq!(e.var, "MANDAT_METRICS_ADDR");
    let e = Config::from_sources(
        None,
        &env(&[
            ("MANDAT_LISTEN", "127.0.0.1:8080"),
            ("MANDAT_METRICS_ADDR", "127.0.0.1:8080"),
        ]),
    )
    .unwrap_err();
    assert_eq!(e.var, "MANDAT_METRICS_ADDR");
}

#[test]
fn cidr_matching() {
    let c = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(c.contains("10.1.2.3".parse().unwrap()));
    assert!(!c.contains("11.1.2.3".parse().unwrap()));
    assert!(Cidr::parse("10.0.0.0/33").is_none());
    assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
}

#[test]
fn debug_hides_postgres_password() {
    let u = DatabaseUrl::parse("postgres://u:hunter2@h/db").unwrap();
    assert!(!format!("{u:?}").contains("hunter2"));
}
