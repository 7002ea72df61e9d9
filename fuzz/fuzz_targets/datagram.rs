#![no_main]
//! Any datagram at a worker with a live room: routing, STUN, DTLS, SRTP paths of the stack.
use std::time::Instant;

use jiefen_media::core::{Limits, ParticipantOptions, WorkerCore};
use jiefen_media::{ParticipantId, Permissions, RoomId, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut core = WorkerCore::new("127.0.0.1:7000".parse().expect("addr"), Limits::default());
    let room = RoomId::from("r");
    let _ = core.create_room(room.clone());
    let options = ParticipantOptions {
        permissions: Permissions { publish: vec![Source::Microphone], subscribe: true, hidden: false, data: true },
        group: None,
        sees_all_groups: false,
        reads_all_groups: false,
    };
    let Ok(creds) = core.add_participant(now, &room, ParticipantId::from("p"), options) else { return };
    let from = "127.0.0.1:5000".parse().expect("addr");
    // Make the first datagram routable by its STUN USERNAME so the rest reach the stack.
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[1; 12]);
    let username = format!("{}:x", creds.ufrag);
    let mut attr = vec![0x00, 0x06];
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    stun[2..4].copy_from_slice(&(attr.len() as u16).to_be_bytes());
    stun.extend_from_slice(&attr);
    core.handle_datagram(now, from, &stun);
    for chunk in data.split(|b| *b == 0xff) {
        core.handle_datagram(now, from, chunk);
    }
    core.handle_timeout(now);
    while core.poll_transmit().is_some() {}
});
