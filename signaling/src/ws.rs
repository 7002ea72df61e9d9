//! The websocket endpoint `GET /rtc/v1/ws`: message framing, size and rate limits, error
//! counting, and the hand-off to [`Signaling`].

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;

use crate::proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use crate::service::{Seat, Signaling};

/// How long a new connection may take to send its join message.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(signaling: Signaling) -> Router {
    Router::new().route("/rtc/v1/ws", get(upgrade)).with_state(signaling)
}

async fn upgrade(State(signaling): State<Signaling>, ws: WebSocketUpgrade) -> Response {
    let max = signaling.limits().max_message_bytes;
    ws.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| serve(signaling, socket))
}

fn encode(m: &ServerMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"encoding"}"#.into()).into())
}

/// Per-connection token bucket.
struct RateLimit {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> RateLimit {
        let per_second = f64::from(per_second.max(1));
        RateLimit { per_second, tokens: per_second, last: Instant::now() }
    }
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_second).min(self.per_second);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

enum Incoming {
    Message(ClientMessage),
    /// Not a protocol message; the text says why.
    Bad(ErrorCode, String),
    Close(Option<u16>),
    Skip,
}

fn classify(frame: Option<Result<Message, axum::Error>>) -> Incoming {
    match frame {
        None => Incoming::Close(None),
        Some(Err(e)) => {
            let text = e.to_string();
            // tungstenite's capacity error: the message exceeded max_message_size.
            if text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Message too big") {
                Incoming::Close(Some(close_code::SIZE))
            } else {
                Incoming::Close(None)
            }
        }
        Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientMessage>(t.as_str()) {
            Ok(m) => Incoming::Message(m),
            Err(e) => Incoming::Bad(ErrorCode::BadMessage, format!("not a protocol message: {e}")),
        },
        Some(Ok(Message::Binary(_))) => Incoming::Bad(ErrorCode::BadMessage, "binary messages are not part of the protocol".into()),
        Some(Ok(Message::Close(_))) => Incoming::Close(None),
        Some(Ok(_)) => Incoming::Skip,
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.to_string().into() }))).await;
}

async fn serve(signaling: Signaling, mut socket: WebSocket) {
    let max_errors = signaling.limits().max_errors;
    let mut errors = 0u32;
    let mut rate = RateLimit::new(signaling.limits().messages_per_second);
    // Phase 1: the join message.
    let deadline = tokio::time::sleep(JOIN_TIMEOUT);
    tokio::pin!(deadline);
    let mut seat: Seat = loop {
        let frame = tokio::select! {
            f = socket.recv() => f,
            _ = &mut deadline => {
                let _ = socket.send(encode(&ServerMessage::error(ErrorCode::NotJoined, "no join message within 10 s"))).await;
                close(&mut socket, close_code::POLICY, "join timeout").await;
                return;
            }
        };
        let error = match classify(frame) {
            Incoming::Close(Some(code)) => return close(&mut socket, code, "message too big").await,
            Incoming::Close(None) => return,
            Incoming::Skip => continue,
            Incoming::Bad(code, text) => (code, text),
            Incoming::Message(ClientMessage::Join { token, protocol, resume }) => {
                if protocol.is_some_and(|p| p != PROTOCOL_VERSION) {
                    (ErrorCode::UnsupportedProtocol, format!("this server speaks protocol {PROTOCOL_VERSION}"))
                } else {
                    match signaling.join(&token, resume).await {
                        Ok(seat) => break seat,
                        Err(e) => {
                            if let Some(url) = e.redirect {
                                let _ = socket.send(encode(&ServerMessage::Redirect { url })).await;
                                close(&mut socket, close_code::NORMAL, "room hosted elsewhere").await;
                                return;
                            }
                            // A refused join is final: say why and close.
                            let _ = socket.send(encode(&ServerMessage::error(e.code, e.message))).await;
                            close(&mut socket, close_code::POLICY, "join refused").await;
                            return;
                        }
                    }
                }
            }
            Incoming::Message(_) => (ErrorCode::NotJoined, "send a join message first".into()),
        };
        errors += 1;
        let _ = socket.send(encode(&ServerMessage::error(error.0, error.1))).await;
        if errors >= max_errors {
            close(&mut socket, close_code::POLICY, "too many bad messages").await;
            return;
        }
    };

    // Phase 2: seated. `departed`: the participant left on purpose (or was removed), so the
    // seat goes now; otherwise the connection dropped and the seat is held for the window.
    let mut going_away = signaling.going_away();
    let mut departed = false;
    loop {
        tokio::select! {
            out = seat.outbox.recv() => {
                let Some(out) = out else { break };
                let last = matches!(out, ServerMessage::Removed { .. } | ServerMessage::SessionEnded { .. } | ServerMessage::Refused);
                if socket.send(encode(&out)).await.is_err() { break; }
                if last {
                    departed = true;
                    close(&mut socket, close_code::NORMAL, "session over").await;
                    break;
                }
            }
            _ = going_away.recv() => {
                let _ = socket.send(encode(&ServerMessage::GoingAway)).await;
                close(&mut socket, close_code::AWAY, "server shutting down").await;
                break;
            }
            frame = socket.recv() => {
                let error = match classify(frame) {
                    Incoming::Close(Some(code)) => { close(&mut socket, code, "message too big").await; break; }
                    Incoming::Close(None) => break,
                    Incoming::Skip => continue,
                    Incoming::Bad(code, text) => Some((code, text)),
                    Incoming::Message(_) if !rate.allow() => Some((ErrorCode::RateLimited, "too many messages per second".to_string())),
                    Incoming::Message(ClientMessage::Leave) => { departed = true; break }
                    Incoming::Message(m) => match signaling.handle(&seat, m).await {
                        Ok(Some(reply)) => { if socket.send(encode(&reply)).await.is_err() { break; } None }
                        Ok(None) => None,
                        Err(e) => Some(e),
                    },
                };
                if let Some((code, text)) = error {
                    errors += 1;
                    if socket.send(encode(&ServerMessage::error(code, text))).await.is_err() { break; }
                    if errors >= max_errors {
                        departed = true;
                        close(&mut socket, close_code::POLICY, "too many bad messages").await;
                        break;
                    }
                }
            }
        }
    }
    if departed {
        signaling.leave(&seat).await;
    } else {
        signaling.disconnected(&seat).await;
    }
}
