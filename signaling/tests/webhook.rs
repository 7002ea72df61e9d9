//! Signed webhooks: delivered in order, retried after a failure, verifiable, tamper-evident.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use jiefen_signaling::SessionEvent;
use jiefen_signaling::webhook::{self, WebhookConfig, WebhookError, WireEvent};

const SECRET: &[u8] = b"webhook-test-secret-0123456789abcd";

#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>,
    fail_first: Arc<Mutex<bool>>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    r.calls.lock().expect("lock").push((auth, body.to_vec()));
    let mut fail = r.fail_first.lock().expect("lock");
    if *fail {
        *fail = false;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn events_are_delivered_signed_and_retried() {
    let receiver = Receiver { fail_first: Arc::new(Mutex::new(true)), ..Receiver::default() };
    let app = Router::new().route("/hooks", post(hook)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (tx, rx) = tokio::sync::broadcast::channel(16);
    let task = tokio::spawn(webhook::run(
        rx,
        WebhookConfig { url: format!("http://{addr}/hooks"), secret: SECRET.to_vec(), attempts: 4, first_backoff: Duration::from_millis(50) },
    ));
    tx.send(SessionEvent::SessionStarted { room: "case-7".into() }).expect("send");
    tx.send(SessionEvent::RecordingChanged { room: "case-7".into(), recording: true, by: "med".into() }).expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while receiver.calls.lock().expect("lock").len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "deliveries: {}", receiver.calls.lock().expect("lock").len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tx);
    let _ = task.await;
    let calls = receiver.calls.lock().expect("lock").clone();
    // The first attempt got a 503 and was retried with the same event.
    assert_eq!(calls[0].1, calls[1].1, "the failed delivery was retried");
    let first: WireEvent = serde_json::from_slice(&calls[1].1).expect("json");
    assert!(matches!(first, WireEvent::SessionStarted { ref room, .. } if room == "case-7"));
    let second: WireEvent = serde_json::from_slice(&calls[2].1).expect("json");
    assert!(matches!(second, WireEvent::RecordingChanged { recording: true, ref by, .. } if by == "med"));
    for (auth, body) in &calls {
        webhook::verify(SECRET, auth.as_deref(), body).expect("valid signature");
    }
    // Tampering shows.
    let (auth, body) = &calls[2];
    let mut forged = body.clone();
    forged[10] ^= 1;
    assert_eq!(webhook::verify(SECRET, auth.as_deref(), &forged), Err(WebhookError::BodyMismatch));
    assert_eq!(webhook::verify(b"another-secret-another-secret-xx", auth.as_deref(), body), Err(WebhookError::BadSignature));
    assert_eq!(webhook::verify(SECRET, None, body), Err(WebhookError::MissingSignature));
}
