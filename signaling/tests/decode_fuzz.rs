//! Property-style checks of message decoding: thousands of mutated and random inputs never panic,
//! and every server message survives a round trip through JSON.

use jiefen_signaling::proto::{ClientMessage, ErrorCode, ParticipantInfo, ServerMessage, TrackInfo};
use jiefen_signaling::token::{Role, Source};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    r#"{"type":"join","token":"eyJ.abc.def","protocol":1,"resume":true}"#,
    r#"{"type":"offer","sdp":"v=0\r\n","publish":[{"mid":"0","source":"camera"}],"subscribe":[{"mid":"1","track":"a/1/0"}]}"#,
    r#"{"type":"mute","source":"microphone","muted":true}"#,
    r#"{"type":"chat","text":"你好"}"#,
    r#"{"type":"set_caucus","groups":{"a":"A","b":"B"}}"#,
    r#"{"type":"join_caucus_group","group":null}"#,
    r#"{"type":"set_video_size","track":"t","width":320,"height":240}"#,
    r#"{"type":"ping"}"#,
];

#[test]
fn mutated_client_messages_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"{}[]\":,0123456789abcdefghijklmnopqrstuvwxyz_ \\\xe4\xbd\xa0";
    let mut decoded = 0;
    for _ in 0..20_000 {
        let seed = SEEDS[rng.below(SEEDS.len())].as_bytes();
        let mut bytes = seed.to_vec();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes[i] = alphabet[rng.below(alphabet.len())];
                }
                1 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes.truncate(i);
                }
                2 => {
                    let i = rng.below(bytes.len() + 1);
                    bytes.insert(i, alphabet[rng.below(alphabet.len())]);
                }
                _ if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes.remove(i);
                }
                _ => {}
            }
        }
        if let Ok(text) = std::str::from_utf8(&bytes)
            && serde_json::from_str::<ClientMessage>(text).is_ok()
        {
            decoded += 1;
        }
    }
    // Some mutations stay valid (e.g. inside strings); most do not.
    assert!(decoded > 100 && decoded < 20_000, "{decoded}");
}

#[test]
fn every_seed_decodes_and_round_trips() {
    for s in SEEDS {
        let m: ClientMessage = serde_json::from_str(s).expect(s);
        let again: ClientMessage = serde_json::from_str(&serde_json::to_string(&m).expect("encode")).expect("decode");
        assert_eq!(m, again);
    }
}

#[test]
fn server_messages_round_trip() {
    let p = ParticipantInfo { identity: "a".into(), name: "张三".into(), role: Role::Party, muted: vec![Source::Camera], group: Some("A".into()) };
    let t = TrackInfo { id: "a/1/0".into(), publisher: "a".into(), kind: "audio".into(), source: Source::Microphone };
    let messages = vec![
        ServerMessage::Joined {
            protocol: 1,
            room: "r".into(),
            identity: "a".into(),
            name: "n".into(),
            role: Role::Mediator,
            room_admin: true,
            participants: vec![p.clone()],
            tracks: vec![t.clone()],
            recording: true,
            lobby: vec![p.clone()],
            resumed: false,
        },
        ServerMessage::TrackPublished { track: t },
        ServerMessage::ParticipantUpdated { participant: p },
        ServerMessage::ActiveSpeaker { identity: None },
        ServerMessage::Redirect { url: "http://n2:8080".into() },
        ServerMessage::error(ErrorCode::RateLimited, "slow down"),
    ];
    for m in messages {
        let json = serde_json::to_string(&m).expect("encode");
        let back: ServerMessage = serde_json::from_str(&json).expect("decode");
        assert_eq!(back, m, "{json}");
    }
}
