//! The signaling protocol over real websockets: join, lobby, errors, limits, host controls.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jiefen_media::{Limits, Media, MediaConfig};
use jiefen_signaling::proto::ServerMessage;
use jiefen_signaling::{MemoryStore, Role, SessionStore, Signaling, SignalingConfig, SignalingLimits, TokenKey, TokenRequest};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Node {
    url: String,
    key: TokenKey,
    signaling: Signaling,
}

async fn node(limits: SignalingLimits) -> Node {
    let media = Media::start(MediaConfig {
        bind_ip: [127, 0, 0, 1].into(),
        public_ip: [127, 0, 0, 1].into(),
        first_port: 0,
        workers: 1,
        send_batch: jiefen_media::batch::DEFAULT_BATCH,
        limits: Limits::default(),
    })
    .expect("media");
    let key = TokenKey::from_secret(b"protocol-test-secret-0123456789ab");
    let signaling = Signaling::new(
        media,
        key.clone(),
        SessionStore::Memory(MemoryStore::default()),
        SignalingConfig { node_id: "n1".into(), url: "http://127.0.0.1:1".into(), limits },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = jiefen_signaling::ws::router(signaling.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Node { url: format!("ws://{addr}/rtc/v1/ws"), key, signaling }
}

fn token(n: &Node, room: &str, identity: &str, role: Role, lobby: bool) -> String {
    n.key
        .mint(&TokenRequest {
            room: room.into(),
            identity: identity.into(),
            name: identity.into(),
            role,
            lobby,
            ttl: Duration::from_secs(600),
            case_id: None,
        })
        .expect("mint")
}

async fn connect(n: &Node) -> Ws {
    tokio_tungstenite::connect_async(&n.url).await.expect("ws connect").0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

/// The next protocol message (skipping pings); panics after 5 s.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a message within 5 s");
        match m {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).expect("json"),
            Some(Ok(Message::Close(f))) => return json!({"type": "__closed", "code": f.map(|f| u16::from(f.code))}),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return json!({"type": "__closed"}),
        }
    }
}

/// Receives until a message of `kind` arrives.
async fn expect_type(ws: &mut Ws, kind: &str) -> Value {
    for _ in 0..20 {
        let m = recv(ws).await;
        if m["type"] == kind {
            return m;
        }
    }
    panic!("no {kind} message");
}

async fn joined(n: &Node, room: &str, identity: &str, role: Role) -> Ws {
    let mut ws = connect(n).await;
    send(&mut ws, json!({"type": "join", "token": token(n, room, identity, role, false), "protocol": 1})).await;
    let m = expect_type(&mut ws, "joined").await;
    assert_eq!(m["identity"], identity);
    ws
}

#[tokio::test]
async fn participants_see_each_other_join_and_leave() {
    let n = node(SignalingLimits::default()).await;
    let mut med = joined(&n, "r1", "med", Role::Mediator).await;
    let mut party = connect(&n).await;
    send(&mut party, json!({"type": "join", "token": token(&n, "r1", "zhang", Role::Party, false)})).await;
    let j = expect_type(&mut party, "joined").await;
    assert_eq!(j["participants"][0]["identity"], "med");
    assert_eq!(j["room_admin"], false);
    let pj = expect_type(&mut med, "participant_joined").await;
    assert_eq!(pj["participant"]["identity"], "zhang");
    send(&mut party, json!({"type": "chat", "text": "你好"})).await;
    let chat = expect_type(&mut med, "chat").await;
    assert_eq!((chat["from"].as_str(), chat["text"].as_str()), (Some("zhang"), Some("你好")));
    send(&mut party, json!({"type": "leave"})).await;
    let left = expect_type(&mut med, "participant_left").await;
    assert_eq!(left["identity"], "zhang");
}

/// Joins racing into a room that does not exist yet all land in one room (the media plane
/// refuses a second room of the same id, which a join must never see).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_first_joins_share_one_room() {
    let n = node(SignalingLimits::default()).await;
    for round in 0..5 {
        let room = format!("race-{round}");
        // Connect everyone first, then send the joins together.
        let mut sockets = Vec::new();
        for i in 0..8 {
            sockets.push((connect(&n).await, token(&n, &room, &format!("p{i}"), Role::Official, false)));
        }
        let joins = sockets.into_iter().map(|(mut ws, token)| {
            tokio::spawn(async move {
                send(&mut ws, json!({"type": "join", "token": token, "protocol": 1})).await;
                recv(&mut ws).await
            })
        });
        for j in futures_util::future::join_all(joins).await {
            let first = j.expect("task");
            assert_eq!(first["type"], "joined", "{first}");
        }
    }
}

#[tokio::test]
async fn lobby_waits_until_admitted_and_refusal_ends_it() {
    let n = node(SignalingLimits::default()).await;
    let mut med = joined(&n, "r2", "med", Role::Mediator).await;
    let mut party = connect(&n).await;
    send(&mut party, json!({"type": "join", "token": token(&n, "r2", "zhang", Role::Party, true)})).await;
    assert_eq!(recv(&mut party).await["type"], "lobby_waiting");
    let lobby = expect_type(&mut med, "lobby").await;
    assert_eq!(lobby["waiting"][0]["identity"], "zhang");
    // Waiting parties cannot act in the room.
    send(&mut party, json!({"type": "chat", "text": "hi"})).await;
    assert_eq!(expect_type(&mut party, "error").await["code"], "not_joined");
    // A party cannot admit itself.
    let mut other = joined(&n, "r2", "li", Role::Party).await;
    send(&mut other, json!({"type": "admit", "identity": "zhang"})).await;
    assert_eq!(expect_type(&mut other, "error").await["code"], "forbidden");
    send(&mut med, json!({"type": "admit", "identity": "zhang"})).await;
    assert_eq!(expect_type(&mut party, "joined").await["identity"], "zhang");

    let mut late = connect(&n).await;
    send(&mut late, json!({"type": "join", "token": token(&n, "r2", "wang", Role::Party, true)})).await;
    assert_eq!(recv(&mut late).await["type"], "lobby_waiting");
    expect_type(&mut med, "lobby").await;
    send(&mut med, json!({"type": "refuse", "identity": "wang"})).await;
    assert_eq!(expect_type(&mut late, "refused").await["type"], "refused");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_a_code() {
    let n = node(SignalingLimits::default()).await;
    let other_key = TokenKey::from_secret(b"some-other-secret-0123456789abcd");
    let forged = other_key
        .mint(&TokenRequest {
            room: "r".into(),
            identity: "x".into(),
            name: "x".into(),
            role: Role::Mediator,
            lobby: false,
            ttl: Duration::from_secs(60),
            case_id: None,
        })
        .expect("mint");
    for (tok, code) in [("nonsense", "token_invalid"), (forged.as_str(), "token_invalid")] {
        let mut ws = connect(&n).await;
        send(&mut ws, json!({"type": "join", "token": tok})).await;
        let m = recv(&mut ws).await;
        assert_eq!((m["type"].as_str(), m["code"].as_str()), (Some("error"), Some(code)), "{m}");
        assert_eq!(recv(&mut ws).await["type"], "__closed");
    }
    let mut ws = connect(&n).await;
    send(&mut ws, json!({"type": "join", "token": "t", "protocol": 99})).await;
    assert_eq!(recv(&mut ws).await["code"], "unsupported_protocol");
}

#[tokio::test]
async fn garbage_gets_errors_then_the_connection_is_closed() {
    let n = node(SignalingLimits { max_errors: 3, ..SignalingLimits::default() }).await;
    let mut ws = joined(&n, "r3", "med", Role::Mediator).await;
    ws.send(Message::Text("{not json".into())).await.expect("send");
    assert_eq!(recv(&mut ws).await["code"], "bad_message");
    send(&mut ws, json!({"type": "offer", "sdp": "garbage", "publish": [], "subscribe": []})).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    // The room survives bad messages: a second participant still joins it.
    let mut other = joined(&n, "r3", "zhang", Role::Party).await;
    send(&mut other, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut other).await["type"], "pong");
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.expect("send");
    assert_eq!(expect_type(&mut ws, "error").await["code"], "bad_message");
    assert_eq!(recv(&mut ws).await["type"], "__closed");
}

#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let n = node(SignalingLimits { max_message_bytes: 1024, ..SignalingLimits::default() }).await;
    let mut ws = joined(&n, "r4", "med", Role::Mediator).await;
    let big = "x".repeat(4096);
    let _ = ws.send(Message::Text(json!({"type": "chat", "text": big}).to_string().into())).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["type"], "__closed");
    assert_eq!(m["code"], 1009, "{m}");
}

#[tokio::test]
async fn full_room_is_refused() {
    let n = node(SignalingLimits { participants_per_room: 2, ..SignalingLimits::default() }).await;
    let _a = joined(&n, "r5", "a", Role::Mediator).await;
    let _b = joined(&n, "r5", "b", Role::Party).await;
    let mut c = connect(&n).await;
    send(&mut c, json!({"type": "join", "token": token(&n, "r5", "c", Role::Party, false)})).await;
    assert_eq!(recv(&mut c).await["code"], "room_full");
}

#[tokio::test]
async fn host_controls_reach_everyone() {
    let n = node(SignalingLimits::default()).await;
    let mut med = joined(&n, "r6", "med", Role::Mediator).await;
    let mut party = joined(&n, "r6", "zhang", Role::Party).await;
    let mut other = joined(&n, "r6", "li", Role::Party).await;
    // Recording: parties may not; the mediator may and everyone is told.
    send(&mut party, json!({"type": "set_recording", "recording": true})).await;
    assert_eq!(expect_type(&mut party, "error").await["code"], "forbidden");
    send(&mut med, json!({"type": "set_recording", "recording": true})).await;
    assert_eq!(expect_type(&mut party, "recording").await["recording"], true);
    assert_eq!(expect_type(&mut other, "recording").await["recording"], true);
    // Caucus: chat stays inside a group.
    send(&mut med, json!({"type": "set_caucus", "groups": {"zhang": "A", "li": "B"}})).await;
    expect_type(&mut party, "caucus").await;
    expect_type(&mut other, "caucus").await;
    send(&mut party, json!({"type": "chat", "text": "私下说"})).await;
    let seen_by_med = expect_type(&mut med, "chat").await;
    assert_eq!(seen_by_med["text"], "私下说");
    send(&mut other, json!({"type": "ping"})).await;
    let next = expect_type(&mut other, "pong").await;
    assert_eq!(next["type"], "pong", "li got no chat from the other group before the pong");
    // Mute request and removal.
    send(&mut med, json!({"type": "mute_participant", "identity": "li", "source": "microphone"})).await;
    assert_eq!(expect_type(&mut other, "mute_requested").await["by"], "med");
    send(&mut med, json!({"type": "remove", "identity": "li"})).await;
    assert_eq!(expect_type(&mut other, "removed").await["type"], "removed");
    assert_eq!(expect_type(&mut party, "participant_left").await["identity"], "li");
    // End for all.
    send(&mut med, json!({"type": "end_session"})).await;
    assert_eq!(expect_type(&mut party, "session_ended").await["by"], "med");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n.signaling.room_count(), 0);
}

#[tokio::test]
async fn draining_tells_clients_to_go_away_and_refuses_joins() {
    let n = node(SignalingLimits::default()).await;
    let mut med = joined(&n, "r7", "med", Role::Mediator).await;
    n.signaling.drain();
    assert_eq!(expect_type(&mut med, "going_away").await["type"], "going_away");
    let mut late = connect(&n).await;
    send(&mut late, json!({"type": "join", "token": token(&n, "r7", "x", Role::Party, false)})).await;
    assert_eq!(recv(&mut late).await["code"], "unavailable");
    let _ = ServerMessage::Pong;
}

#[tokio::test]
async fn a_dropped_connection_resumes_its_seat_within_the_window() {
    let n = node(SignalingLimits { reconnect_window: Duration::from_millis(800), ..SignalingLimits::default() }).await;
    let mut med = joined(&n, "r8", "med", Role::Mediator).await;
    let tok = token(&n, "r8", "zhang", Role::Party, false);
    let mut party = connect(&n).await;
    send(&mut party, json!({"type": "join", "token": tok})).await;
    expect_type(&mut party, "joined").await;
    expect_type(&mut med, "participant_joined").await;
    send(&mut med, json!({"type": "set_caucus", "groups": {"zhang": "A"}})).await;
    expect_type(&mut party, "caucus").await;
    // The socket dies without a leave message.
    drop(party);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect(&n).await;
    send(&mut again, json!({"type": "join", "token": tok, "resume": true})).await;
    let j = expect_type(&mut again, "joined").await;
    assert_eq!(j["resumed"], true);
    assert_eq!(expect_type(&mut again, "caucus").await["groups"]["zhang"], "A", "the caucus group is kept");
    // The mediator saw no departure: the next thing it hears is the pong.
    send(&mut med, json!({"type": "ping"})).await;
    loop {
        let m = recv(&mut med).await;
        assert_ne!(m["type"], "participant_left", "no departure during a resume");
        if m["type"] == "pong" {
            break;
        }
    }
    // Dropped again and not back within the window: the seat goes.
    drop(again);
    let left = expect_type(&mut med, "participant_left").await;
    assert_eq!(left["identity"], "zhang");
}

/// A recorder that hands out a tap and remembers it, so the test can see it attached.
struct FakeRecorder(std::sync::Mutex<Vec<tokio::sync::mpsc::Receiver<jiefen_media::TapItem>>>);

impl jiefen_signaling::RecordingControl for FakeRecorder {
    fn start(&self, _room: &str) -> Result<jiefen_media::RecordingTap, String> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        self.0.lock().map_err(|e| e.to_string())?.push(rx);
        Ok(jiefen_media::RecordingTap { sender: tx })
    }
}

#[tokio::test]
async fn a_recording_that_stops_on_its_own_is_announced_and_the_session_goes_on() {
    let n = node(SignalingLimits::default()).await;
    let recorder = std::sync::Arc::new(FakeRecorder(std::sync::Mutex::new(Vec::new())));
    n.signaling.set_recording_control(recorder.clone());
    let mut med = joined(&n, "r9", "med", Role::Mediator).await;
    let mut party = joined(&n, "r9", "zhang", Role::Party).await;
    send(&mut med, json!({"type": "set_recording", "recording": true})).await;
    assert_eq!(expect_type(&mut party, "recording").await["recording"], true);
    assert_eq!(recorder.0.lock().expect("lock").len(), 1, "the recorder was started");
    n.signaling.recording_stopped("r9", "no space left on device");
    assert_eq!(expect_type(&mut party, "recording").await["recording"], false);
    let err = expect_type(&mut med, "error").await;
    assert!(err["message"].as_str().is_some_and(|m| m.contains("no space left")), "{err}");
    // The tap is detached: the recorder's channel closes.
    let mut rx = recorder.0.lock().expect("lock").pop().expect("rx");
    let closed = tokio::time::timeout(Duration::from_secs(5), async { while rx.recv().await.is_some() {} }).await;
    assert!(closed.is_ok(), "the tap was detached");
    send(&mut party, json!({"type": "ping"})).await;
    expect_type(&mut party, "pong").await;
}

#[tokio::test]
async fn a_shared_document_reaches_every_member() {
    let n = node(SignalingLimits::default()).await;
    let mut med = joined(&n, "r10", "med", Role::Mediator).await;
    let mut party = joined(&n, "r10", "zhang", Role::Party).await;
    let doc = jiefen_signaling::proto::ServerMessage::Document { kind: "agreement".into(), title: "人民调解协议书".into(), version: 2, sha256: "ab".into(), body: "正文".into() };
    assert!(n.signaling.share_document("r10", doc));
    for ws in [&mut med, &mut party] {
        let d = expect_type(ws, "document").await;
        assert_eq!((d["version"].as_i64(), d["body"].as_str()), (Some(2), Some("正文")));
    }
    assert!(!n.signaling.share_document("no-such-room", jiefen_signaling::proto::ServerMessage::Document { kind: "x".into(), title: "x".into(), version: 1, sha256: String::new(), body: String::new() }));
}
