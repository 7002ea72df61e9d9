//! The wire protocol of `/rtc/v1/ws`: one JSON object per websocket text message, tagged by
//! `type`. This module is the only serde vocabulary of the wire; `docs/signaling.md` documents
//! every message and error code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::token::{Role, Source};

pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message: present the join token. `resume`: this client still holds its peer
    /// connection from a seat that dropped moments ago and wants that seat back as it was.
    Join {
        token: String,
        #[serde(default)]
        protocol: Option<u32>,
        #[serde(default)]
        resume: bool,
    },
    /// An SDP offer (first or renegotiation) and the meaning of its m-lines.
    Offer {
        sdp: String,
        #[serde(default)]
        publish: Vec<PublishedMid>,
        #[serde(default)]
        subscribe: Vec<SubscribedMid>,
    },
    /// Trickled ICE candidate. The server is ICE-lite and needs none; accepted for compatibility.
    Candidate { candidate: serde_json::Value },
    /// The sender muted or unmuted one of its sources.
    Mute { source: Source, muted: bool },
    Chat { text: String },
    /// The size (device pixels) at which this client shows a video track; picks the
    /// simulcast layer it receives.
    SetVideoSize { track: String, width: u32, height: u32 },
    /// Host controls (need the room-admin grant).
    Admit { identity: String },
    Refuse { identity: String },
    MuteParticipant { identity: String, source: Source },
    Remove { identity: String },
    SetRecording { recording: bool },
    /// Caucus: identity → group name; participants not named stay in the plenary.
    SetCaucus { groups: BTreeMap<String, String> },
    /// Where the host itself listens: a group, or none for the plenary.
    JoinCaucusGroup { group: Option<String> },
    EndCaucus,
    EndSession,
    Leave,
    Ping,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedMid {
    pub mid: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribedMid {
    pub mid: String,
    pub track: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub identity: String,
    pub name: String,
    pub role: Role,
    pub muted: Vec<Source>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub id: String,
    pub publisher: String,
    pub kind: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined {
        protocol: u32,
        room: String,
        identity: String,
        name: String,
        role: Role,
        room_admin: bool,
        participants: Vec<ParticipantInfo>,
        tracks: Vec<TrackInfo>,
        recording: bool,
        lobby: Vec<ParticipantInfo>,
        /// True when a dropped seat was resumed: media kept flowing, the peer connection stands.
        resumed: bool,
    },
    /// The token says to wait: the participant is in the lobby until admitted or refused.
    LobbyWaiting,
    /// To room admins: the lobby changed.
    Lobby { waiting: Vec<ParticipantInfo> },
    Refused,
    Answer { sdp: String },
    ParticipantJoined { participant: ParticipantInfo },
    ParticipantUpdated { participant: ParticipantInfo },
    ParticipantLeft { identity: String },
    TrackPublished { track: TrackInfo },
    TrackUnpublished { track: String },
    Chat { from: String, name: String, text: String, at: u64 },
    /// A participant's connection quality: `excellent`, `good` or `poor` (uplink loss).
    ConnectionQuality { identity: String, quality: String },
    /// The loudest participant now, or `null` when nobody speaks.
    ActiveSpeaker { identity: Option<String> },
    Recording { recording: bool, by: String },
    /// A document everyone in the session reviews together (the mediation agreement as drafted
    /// or revised): the same version, with its hash, on every screen.
    Document { kind: String, title: String, version: i64, sha256: String, body: String },
    /// A host asks this participant to mute a source.
    MuteRequested { source: Source, by: String },
    Caucus { groups: BTreeMap<String, String> },
    ConnectionState { state: String },
    /// To a publisher: which simulcast layers of a source to send, lowest first (`q`, `h`, `f`).
    /// Layers nobody watches are paused to spare the uplink; they are asked for again when needed.
    PublishLayers { source: Source, active: Vec<bool> },
    Removed { reason: String },
    SessionEnded { by: String },
    /// The node is shutting down; reconnect (the client retries with its token).
    GoingAway,
    /// The room lives on another node: reconnect there (`url` is its HTTP base URL; the
    /// websocket is at `url` + `/rtc/v1/ws`). The socket closes after this message.
    Redirect { url: String },
    Error { code: ErrorCode, message: String },
    Pong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadMessage,
    NotJoined,
    AlreadyJoined,
    TokenExpired,
    TokenInvalid,
    UnsupportedProtocol,
    Forbidden,
    RoomFull,
    ServerFull,
    NotFound,
    BadOffer,
    RateLimited,
    Unavailable,
    Internal,
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error { code, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_decode() {
        let m: ClientMessage = serde_json::from_str(r#"{"type":"join","token":"t"}"#).expect("join");
        assert_eq!(m, ClientMessage::Join { token: "t".into(), protocol: None, resume: false });
        let m: ClientMessage = serde_json::from_str(
            r#"{"type":"offer","sdp":"v=0","publish":[{"mid":"0","source":"microphone"}],"subscribe":[{"mid":"2","track":"a/0"}]}"#,
        )
        .expect("offer");
        assert!(matches!(m, ClientMessage::Offer { ref publish, .. } if publish[0].source == Source::Microphone));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in ["", "{", "null", "[]", r#"{"type":"nope"}"#, r#"{"type":"join"}"#, r#"{"type":"join","token":1}"#,
            r#"{"type":"mute","source":"nose","muted":true}"#] {
            assert!(serde_json::from_str::<ClientMessage>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn server_messages_are_tagged() {
        let s = serde_json::to_string(&ServerMessage::error(ErrorCode::RoomFull, "full")).expect("json");
        assert_eq!(s, r#"{"type":"error","code":"room_full","message":"full"}"#);
    }
}
