//! The room data channel relayed by the SFU: to everyone, to chosen recipients, within caucus
//! groups, with the sender named by the SFU; refusals for what a participant may not send.

mod common;

use bytes::BytesMut;
use common::*;
use jiefen_media::data::{FLAG_PRIVATE, FLAG_TEXT};
use jiefen_media::{ParticipantId, ParticipantOptions, Permissions, RoomHandle};

/// A peer with only the data channel, joined and connected.
async fn data_peer(room: &RoomHandle, id: &str, options: ParticipantOptions) -> (Peer, DataEnd) {
    let mut p = Peer::new(id).await;
    room.add_participant(p.id.clone(), options).await.expect("join");
    let mut end = p.open_data().await;
    p.negotiate(room).await.expect("negotiate");
    p.wait_connected().await;
    end.wait_open().await;
    (p, end)
}

fn relayed(from: &str, flags: u8, payload: &[u8]) -> Vec<u8> {
    [&[1u8, from.len() as u8][..], from.as_bytes(), &[flags], payload].concat()
}

fn directed(to: &[&str], flags: u8, payload: &[u8]) -> BytesMut {
    let mut f = vec![1u8, to.len() as u8];
    for t in to {
        f.push(t.len() as u8);
        f.extend_from_slice(t.as_bytes());
    }
    f.push(flags);
    f.extend_from_slice(payload);
    BytesMut::from(&f[..])
}

/// The refusal codes a peer has been sent.
fn refusals(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.iter().filter(|f| f.first() == Some(&0xEE)).filter_map(|f| f.get(1).copied()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_the_room_or_the_named_recipient_with_the_sender_named() {
    let media = start_media(1);
    let (room, _events) = room(&media, "dc").await;
    let (_a, a) = data_peer(&room, "a", everyone()).await;
    let (_b, b) = data_peer(&room, "b", everyone()).await;
    let (_c, c) = data_peer(&room, "c", everyone()).await;

    a.channel.send_text("大家好").await.expect("send");
    let want = relayed("a", FLAG_TEXT, "大家好".as_bytes());
    assert_eq!(b.frames(1).await, vec![want.clone()]);
    assert_eq!(c.frames(1).await, vec![want]);

    // To b alone, binary: c gets nothing more, b sees it was private.
    a.channel.send(directed(&["b"], 0, &[0, 1, 2, 255])).await.expect("send");
    assert_eq!(b.frames(2).await[1], relayed("a", FLAG_PRIVATE, &[0, 1, 2, 255]));
    // Someone not in the room: a is told; nobody receives anything.
    a.channel.send(directed(&["nobody"], FLAG_TEXT, b"psst")).await.expect("send");
    assert_eq!(refusals(&a.frames(1).await), vec![5]);
    // A malformed frame is refused, not relayed.
    a.channel.send(BytesMut::from(&[9u8, 9][..])).await.expect("send");
    assert_eq!(refusals(&a.frames(2).await), vec![5, 1]);
    assert_eq!(c.frames(2).await.len(), 1, "c got only the message to everyone");
    assert_eq!(b.frames(3).await.len(), 2);
    assert!(a.frames(2).await.iter().all(|f| f[0] == 0xEE), "a never hears itself");
    let counters = media.stats();
    assert_eq!(counters.data_relayed.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(counters.data_refused.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caucus_groups_keep_messages_apart_and_the_host_reads_all() {
    let media = start_media(1);
    let (room, _events) = room(&media, "dg").await;
    let mediator = ParticipantOptions { reads_all_groups: true, ..everyone() };
    let (_m, m) = data_peer(&room, "med", mediator).await;
    let (_x, x) = data_peer(&room, "x", everyone()).await;
    let (_y, y) = data_peer(&room, "y", everyone()).await;
    room.set_group(ParticipantId::from("x"), Some("A".into())).await.expect("group");
    room.set_group(ParticipantId::from("y"), Some("B".into())).await.expect("group");

    x.channel.send_text("only A").await.expect("send");
    assert_eq!(m.frames(1).await, vec![relayed("x", FLAG_TEXT, b"only A")], "the mediator hears group A");
    // y cannot reach x across the groups, not even by name.
    y.channel.send(directed(&["x"], FLAG_TEXT, b"hello x")).await.expect("send");
    assert_eq!(refusals(&y.frames(1).await), vec![5]);
    assert!(y.frames(0).await.iter().all(|f| f[0] == 0xEE), "y heard nothing of A");
    // The mediator (plenary) reaches a group member only by joining the group.
    m.channel.send_text("to the plenary").await.expect("send");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    room.set_group(ParticipantId::from("med"), Some("B".into())).await.expect("group");
    m.channel.send_text("to B").await.expect("send");
    assert_eq!(y.frames(2).await.iter().filter(|f| f[0] == 1).cloned().collect::<Vec<_>>(), vec![relayed("med", FLAG_TEXT, b"to B")]);
    assert!(x.frames(1).await.is_empty(), "x heard nothing: {:?}", x.frames(0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_permissions_are_refused_with_a_reason() {
    let media = start_media(1);
    let (room, _events) = room(&media, "dl").await;
    let (_a, a) = data_peer(&room, "a", everyone()).await;
    let (_b, b) = data_peer(&room, "b", everyone()).await;
    let muted = ParticipantOptions { permissions: Permissions { data: false, ..everyone().permissions }, ..everyone() };
    let (_q, q) = data_peer(&room, "quiet", muted).await;
    let hidden = ParticipantOptions { permissions: Permissions { hidden: true, ..everyone().permissions }, ..everyone() };
    let (_h, h) = data_peer(&room, "observer", hidden).await;

    // Larger than the limit (16 KiB by default).
    a.channel.send(BytesMut::from(&vec![0u8; 17 * 1024][..])).await.expect("send");
    assert_eq!(refusals(&a.frames(1).await), vec![2]);
    q.channel.send_text("may I?").await.expect("send");
    assert_eq!(refusals(&q.frames(1).await), vec![4]);
    h.channel.send_text("I am here").await.expect("send");
    assert_eq!(refusals(&h.frames(1).await), vec![4], "a hidden observer cannot give itself away");
    // Naming the hidden observer is like naming no one.
    a.channel.send(directed(&["observer"], FLAG_TEXT, b"hi")).await.expect("send");
    assert_eq!(refusals(&a.frames(2).await), vec![2, 5]);
    // 20 per second, bursts of 40 (one spent above): a flood of 60 gets through about 39 and
    // refusals for the rest.
    for i in 0..60 {
        a.channel.send_text(&format!("{i}")).await.expect("send");
    }
    let got = b.frames(60).await;
    let delivered = got.iter().filter(|f| f[0] == 1).count();
    assert!((38..=45).contains(&delivered), "{delivered} of 60 delivered");
    let refused = refusals(&a.frames(2 + 60 - delivered).await).iter().filter(|&&c| c == 3).count();
    assert_eq!(refused, 60 - delivered);
    // The observer listens: it got every message to everyone.
    assert_eq!(h.frames(delivered + 1).await.iter().filter(|f| f[0] == 1).count(), delivered);
}
