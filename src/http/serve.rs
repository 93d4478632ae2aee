//! The accept loop: HTTP/1.1 connections served by hyper with limits against slow clients.
//!
//! - request headers must arrive within the header read timeout (10 s); hyper runs this timer
//!   whenever a connection waits for a request, so an idle keep-alive connection is closed
//!   by the same timer;
//! - at most [`ServerLimits::max_connections`] connections are open: beyond that the listener
//!   is not polled (new clients wait in the kernel's backlog) until one closes;
//! - the whole request, body included, is bounded by the per-request timeout layer of the
//!   router (`MANDAT_REQUEST_TIMEOUT_SECS`).
//!
//! Graceful shutdown: the listener closes, open connections finish their current request and
//! close, then [`serve`] returns. Handlers see the peer address as `ConnectInfo<SocketAddr>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{Service as _, ServiceExt as _};

/// Connection limits (from [`crate::config::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time allowed for a request's headers to arrive (and for an idle keep-alive connection
    /// to send its next request).
    pub header_read_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains the connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let tower_service = match make_service.call(remote).await {
            Ok(s) => s,
            Err(e) => match e {},
        };
        let service = TowerToHyperService::new(
            tower_service.map_request(|req: Request<Incoming>| req.map(Body::new)),
        );
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of `accept`: a connection reset before it was accepted is ignored; anything else
/// (out of file descriptors…) is logged and the loop pauses a moment, as axum's does.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
