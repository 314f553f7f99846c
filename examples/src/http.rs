//! A web app's order endpoint protected by a lock, for the HTTP example and its test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use lock_core::LockManager;

/// What the app shares between requests.
#[derive(Clone)]
pub struct AppState {
    /// The lock service.
    pub locks: LockManager,
    /// A name for this instance, echoed in answers.
    pub instance: &'static str,
    /// How many orders this instance processed.
    pub processed: Arc<AtomicUsize>,
}

/// `POST /orders/{id}/process`: 200 when this request processed the order, 409 when
/// another request (on any instance sharing the store) is processing it.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/orders/{id}/process", post(process))
        .with_state(state)
}

async fn process(State(state): State<AppState>, Path(id): Path<u64>) -> (StatusCode, String) {
    let lock = match state.locks.create_lock(format!("order.processing.{id}")) {
        Ok(lock) => lock,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
    };
    // One try; released on every path, including a client that hangs up mid-request.
    match lock
        .run_immediately(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await; // process the order
            state.processed.fetch_add(1, Ordering::SeqCst);
        })
        .await
    {
        Ok(Some(())) => (
            StatusCode::OK,
            format!("{}: order {id} processed successfully", state.instance),
        ),
        Ok(None) => (
            StatusCode::CONFLICT,
            format!("{}: order {id} is already being processed", state.instance),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}: {e}", state.instance),
        ),
    }
}

/// Serve `state` on an ephemeral loopback port; returns the address.
pub async fn serve(state: AppState) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app(state)).await;
    });
    Ok(addr)
}

/// A minimal HTTP/1.1 POST, returning the status code and body.
pub async fn post_to(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    Ok((status, body))
}
