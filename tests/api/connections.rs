//! Slow clients cannot hold connections: headers that do not arrive in time close the
//! connection, idle keep-alive connections are closed, and the number of open connections is
//! capped. The limits are shortened for the tests (1 s, 2 connections); no duration is
//! asserted, only that the server closes within a generous bound.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::TestApp;

/// Generous bound for a close the server does after 1 s.
const BOUND: Duration = Duration::from_secs(15);

/// Reads until the server closes the connection (EOF or reset); returns what was read, or
/// `None` when the connection is still open after [`BOUND`].
async fn read_until_closed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let r = tokio::time::timeout(BOUND, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    r.ok().map(|()| out)
}

async fn app_with_limits(header_read_timeout_secs: u64, max_connections: usize) -> TestApp {
    TestApp::builder()
        .with_config(move |c| {
            c.header_read_timeout = Duration::from_secs(header_read_timeout_secs);
            c.max_connections = max_connections;
        })
        .spawn()
        .await
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = app_with_limits(1, 100).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let read = read_until_closed(&mut s).await;
    assert!(read.is_some(), "the connection is still open");
    // Nothing was served on it.
    assert!(!String::from_utf8_lossy(&read.unwrap()).contains("200 OK"));
    // The server still answers others.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = app_with_limits(1, 100).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let read = read_until_closed(&mut s).await;
    let text = String::from_utf8_lossy(read.as_deref().unwrap_or_default()).to_string();
    assert!(read.is_some(), "the idle connection is still open: {text}");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("connection: close"),
        "kept alive at first: {text}"
    );
}

#[tokio::test]
async fn open_connections_are_capped() {
    // Headers may take long here: the held connections stay open until the test drops one.
    let app = app_with_limits(60, 2).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // Two clients hold the two connections (each is served, then stays open).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // A third one is accepted by the kernel but not served while they are open.
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf))
            .await
            .is_err(),
        "a third connection was served beyond the cap"
    );
    // Once one closes, it is served.
    drop(held.pop());
    let n = tokio::time::timeout(BOUND, third.read(&mut buf))
        .await
        .expect("served after a connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn the_peer_address_reaches_the_handlers_and_shutdown_is_graceful() {
    // The client connects from 127.0.0.2, a trusted proxy: its X-Forwarded-For is believed
    // only because the handlers see the real peer address.
    let app = TestApp::builder()
        .with_config(|c| {
            c.trusted_proxies = vec![mandat::config::Cidr::parse("127.0.0.2/32").unwrap()];
        })
        .spawn()
        .await;
    let proxy = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let body = serde_json::json!({"email": "x@example.fr", "password": "x", "totp": "000000"});
    let login = |forwarded: &'static str| {
        proxy
            .post(app.url("/api/v1/session"))
            .header("x-forwarded-for", forwarded)
            .json(&body)
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(login("198.51.100.7").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(
        login("198.51.100.8").await.unwrap().status(),
        401,
        "another client behind the proxy has its own limit"
    );
    // A clean stop with an idle connection open.
    let idle = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::timeout(BOUND, app.stop())
        .await
        .expect("the server stopped");
    drop(idle);
}
