//! The SFU with real WebRTC peers on loopback: 1:1, 3:1, 6-way, caucus isolation, a subscriber
//! leaving, and a barrage of malformed datagrams at a live room.

mod common;

use std::time::Duration;

use common::*;
use jiefen_media::{ParticipantId, Source};

const SOURCES: [Source; 2] = [Source::Microphone, Source::Camera];

fn assert_intact(peer: &Peer, min_packets: u64) {
    let got = peer.received();
    for (track, r) in &got {
        assert_eq!(r.corrupt, 0, "{}: corrupt payloads on {track}", peer.id);
        assert!(r.packets >= min_packets, "{}: only {} packets on {track}", peer.id, r.packets);
        // Sequence numbers as rewritten by the SFU: continuous (loopback loses nothing here).
        let mut gaps = 0;
        for w in r.seqs.windows(2) {
            if w[1] != w[0].wrapping_add(1) {
                gaps += 1;
            }
        }
        assert!(gaps <= 2, "{}: {gaps} sequence gaps on {track}", peer.id);
    }
}

/// A room where `a` publishes microphone and camera and `b` has joined (nothing subscribed yet).
async fn a_publishing_b_joined(name: &str) -> (jiefen_media::Media, jiefen_media::RoomHandle, Peer, Peer, Vec<jiefen_media::TrackInfo>) {
    let media = start_media(1);
    let (room, mut events) = room(&media, name).await;
    let mut a = Peer::new("a").await;
    let b = Peer::new("b").await;
    room.add_participant(a.id.clone(), everyone()).await.expect("a");
    room.add_participant(b.id.clone(), everyone()).await.expect("b");
    a.add_sources(&SOURCES).await;
    a.negotiate(&room).await.expect("a negotiates");
    let tracks = published(&mut events, 2).await;
    (media, room, a, b, tracks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_payloads_arrive_intact() {
    let (media, room, mut a, mut b, tracks) = a_publishing_b_joined("r1").await;
    b.add_subscriptions(&tracks).await;
    b.negotiate(&room).await.expect("b negotiates");
    a.wait_connected().await;
    b.wait_connected().await;
    pump(&mut [&mut a], 100, 1000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = b.received();
    assert_eq!(got.len(), 2, "both tracks arrive: {got:?}");
    assert_intact(&b, 90);
    assert!(media.stats().packets_forwarded.load(std::sync::atomic::Ordering::Relaxed) >= 180);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_to_one_every_stream_reaches_the_citizen() {
    let media = start_media(1);
    let (room, mut events) = room(&media, "r31").await;
    let mut officials = Vec::new();
    for name in ["o1", "o2", "o3"] {
        let mut p = Peer::new(name).await;
        room.add_participant(p.id.clone(), everyone()).await.expect("official");
        p.add_sources(&SOURCES).await;
        p.negotiate(&room).await.expect("publish");
        officials.push(p);
    }
    let tracks = published(&mut events, 6).await;
    let mut citizen = Peer::new("citizen").await;
    room.add_participant(citizen.id.clone(), everyone()).await.expect("citizen");
    citizen.add_subscriptions(&tracks).await;
    citizen.negotiate(&room).await.expect("subscribe");
    citizen.wait_connected().await;
    for o in officials.iter_mut() {
        o.wait_connected().await;
    }
    let mut refs: Vec<&mut Peer> = officials.iter_mut().collect();
    pump(&mut refs, 60, 800).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(citizen.received().len(), 6);
    assert_intact(&citizen, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_way_many_to_many() {
    let media = start_media(2);
    let (room, mut events) = room(&media, "r6").await;
    let mut peers = Vec::new();
    for i in 0..6 {
        let mut p = Peer::new(&format!("p{i}")).await;
        room.add_participant(p.id.clone(), everyone()).await.expect("join");
        p.add_sources(&SOURCES).await;
        p.negotiate(&room).await.expect("publish");
        peers.push(p);
    }
    let tracks = published(&mut events, 12).await;
    for p in peers.iter_mut() {
        p.add_subscriptions(&tracks).await;
        p.negotiate(&room).await.expect("subscribe");
    }
    for p in peers.iter_mut() {
        p.wait_connected().await;
    }
    let mut refs: Vec<&mut Peer> = peers.iter_mut().collect();
    pump(&mut refs, 40, 600).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for p in &peers {
        assert_eq!(p.received().len(), 10, "{} receives the 10 tracks of the 5 others", p.id);
        assert_intact(p, 30);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caucus_hides_media_across_groups() {
    let media = start_media(1);
    let (room, mut events) = room(&media, "rc").await;
    let mut peers = Vec::new();
    for name in ["med", "x", "y"] {
        let mut p = Peer::new(name).await;
        room.add_participant(p.id.clone(), everyone()).await.expect("join");
        p.add_sources(&[Source::Microphone]).await;
        p.negotiate(&room).await.expect("publish");
        peers.push(p);
    }
    let tracks = published(&mut events, 3).await;
    for p in peers.iter_mut() {
        p.add_subscriptions(&tracks).await;
        p.negotiate(&room).await.expect("subscribe");
        p.wait_connected().await;
    }
    // x alone in group A; the mediator joins y in group B.
    room.set_group(ParticipantId::from("x"), Some("A".into())).await.expect("group");
    room.set_group(ParticipantId::from("y"), Some("B".into())).await.expect("group");
    room.set_group(ParticipantId::from("med"), Some("B".into())).await.expect("group");
    let mut refs: Vec<&mut Peer> = peers.iter_mut().collect();
    pump(&mut refs, 50, 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let count = |p: &Peer, from: &str| -> u64 {
        p.received().iter().filter(|(t, _)| t.starts_with(&format!("{from}/"))).map(|(_, r)| r.packets).sum()
    };
    let (med, x, y) = (&peers[0], &peers[1], &peers[2]);
    assert_eq!(count(x, "med") + count(x, "y"), 0, "x (group A) hears nobody from group B");
    assert_eq!(count(med, "x") + count(y, "x"), 0, "nobody in group B hears x");
    assert!(count(med, "y") >= 40 && count(y, "med") >= 40, "inside group B media flows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_leaving_does_not_disturb_the_others() {
    let media = start_media(1);
    let (room, mut events) = room(&media, "rl").await;
    let mut a = Peer::new("a").await;
    room.add_participant(a.id.clone(), everyone()).await.expect("a");
    a.add_sources(&SOURCES).await;
    a.negotiate(&room).await.expect("publish");
    let tracks = published(&mut events, 2).await;
    let mut subs = Vec::new();
    for name in ["b", "c"] {
        let mut p = Peer::new(name).await;
        room.add_participant(p.id.clone(), everyone()).await.expect("join");
        p.add_subscriptions(&tracks).await;
        p.negotiate(&room).await.expect("subscribe");
        p.wait_connected().await;
        subs.push(p);
    }
    a.wait_connected().await;
    pump(&mut [&mut a], 30, 500).await;
    room.remove_participant(ParticipantId::from("c")).await.expect("c leaves");
    subs[1].close().await;
    pump(&mut [&mut a], 60, 500).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_intact(&subs[0], 85);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_do_not_stop_a_live_room() {
    let media = start_media(1);
    let (room, mut events) = room(&media, "rm").await;
    let mut a = Peer::new("a").await;
    let mut b = Peer::new("b").await;
    let creds = room.add_participant(a.id.clone(), everyone()).await.expect("a");
    room.add_participant(b.id.clone(), everyone()).await.expect("b");
    a.add_sources(&SOURCES).await;
    a.negotiate(&room).await.expect("publish");
    let tracks = published(&mut events, 2).await;
    b.add_subscriptions(&tracks).await;
    b.negotiate(&room).await.expect("subscribe");
    a.wait_connected().await;
    b.wait_connected().await;

    let target = media.local_addrs()[0];
    let rogue = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut seed = 0x1234_5678u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (seed >> 16) as u8
    };
    // A STUN request carrying a real participant's ufrag but no valid integrity: it is routed to
    // that participant's connection, which must reject it (and what follows from the same address).
    let username = format!("{}:rogue", creds.ufrag);
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend((0..12).map(|_| rnd()));
    let mut attr = vec![0x00, 0x06];
    attr.extend((username.len() as u16).to_be_bytes());
    attr.extend(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    stun[2..4].copy_from_slice(&(attr.len() as u16).to_be_bytes());
    stun.extend(attr);
    rogue.send_to(&stun, target).await.expect("send");
    for i in 0..3000usize {
        let len = [0, 1, 2, 12, 13, 20, 100, 1200, 1500, 4000][i % 10];
        let mut d: Vec<u8> = (0..len).map(|_| rnd()).collect();
        match i % 5 {
            0 if len >= 2 => d[0] = 0x80 | (d[0] & 0x3f), // RTP-looking
            1 if len >= 2 => {
                d[0] = 0x80;
                d[1] = 200 + (i % 7) as u8; // RTCP-looking
            }
            2 if len >= 1 => d[0] = 20 + (i % 44) as u8, // DTLS-looking
            3 if len >= 8 => d[..8].copy_from_slice(&stun[..8]), // truncated STUN
            _ => {}
        }
        let _ = rogue.send_to(&d, target).await;
        if i % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    pump(&mut [&mut a], 60, 700).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(media.ready(), "the worker survived");
    assert_intact(&b, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_recovers_packets_lost_on_the_way_to_a_subscriber() {
    let media = start_media(1);
    let (room, mut events) = room(&media, "rn").await;
    let mut a = Peer::new("a").await;
    let mut b = Peer::new("b").await;
    room.add_participant(a.id.clone(), everyone()).await.expect("a");
    room.add_participant(b.id.clone(), everyone()).await.expect("b");
    a.add_sources(&[Source::Camera]).await;
    a.negotiate(&room).await.expect("publish");
    let tracks = published(&mut events, 1).await;
    // Every 10th media packet towards b is lost.
    let relay = LossyRelay::start(media.local_addrs()[0], 10).await;
    b.add_subscriptions(&tracks).await;
    b.negotiate_via(&room, Some(relay.port)).await.expect("subscribe");
    a.wait_connected().await;
    b.wait_connected().await;
    let sent = 300u64;
    pump(&mut [&mut a], sent as usize, 900).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = b.received();
    let r = got.values().next().expect("the video track arrived");
    assert_eq!(r.corrupt, 0);
    let mut counters = r.counters.clone();
    counters.sort_unstable();
    counters.dedup();
    let lost_on_wire = relay.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let first = counters.first().copied().unwrap_or(0);
    let expected = sent - first + 1;
    let missing = expected.saturating_sub(counters.len() as u64);
    // Retransmissions go on the RTX stream the answer announced (RFC 4588), not the media SSRC.
    let rtx_ssrc: u32 = b
        .last_answer
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ssrc-group:FID "))
        .and_then(|g| g.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("the answer pairs the video SSRC with an RTX SSRC");
    let retransmitted = relay.to_client_by_ssrc.lock().expect("lock").get(&rtx_ssrc).copied().unwrap_or(0);
    eprintln!("FIGURE loss recovery: {lost_on_wire} of ~{sent} packets dropped by the relay, {retransmitted} retransmitted over RTX, {missing} missing after NACK/retransmission");
    assert!(retransmitted * 2 >= lost_on_wire, "retransmissions over RTX: {retransmitted} for {lost_on_wire} lost");
    // The webrtc-rs subscriber repeats its NACKs while answers are under way; the SFU answers
    // each packet at most three times, a round trip apart (839 for 123 lost without the guard).
    assert!(retransmitted <= 3 * lost_on_wire, "{retransmitted} retransmissions for {lost_on_wire} lost");
    assert!(lost_on_wire >= 20, "the relay dropped packets ({lost_on_wire})");
    assert!(missing * 10 < lost_on_wire, "NACK recovered most losses: {missing} still missing of {lost_on_wire} dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_tap_sees_every_published_packet() {
    let media = start_media(1);
    let (room, mut events) = room(&media, "rt").await;
    let mut a = Peer::new("a").await;
    room.add_participant(a.id.clone(), everyone()).await.expect("a");
    a.add_sources(&SOURCES).await;
    a.negotiate(&room).await.expect("publish");
    let tracks = published(&mut events, 2).await;
    a.wait_connected().await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(10_000);
    room.set_recording_tap(Some(jiefen_media::RecordingTap { sender: tx })).await.expect("tap");
    pump(&mut [&mut a], 50, 500).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    room.set_recording_tap(None).await.expect("untap");
    let mut per_track = std::collections::HashMap::new();
    let mut reports = 0;
    while let Ok(item) = rx.try_recv() {
        let p = match item {
            jiefen_media::TapItem::Packet(p) => p,
            jiefen_media::TapItem::SenderReport(_) => {
                reports += 1;
                continue;
            }
        };
        assert!(check_payload(&p.packet.payload).is_some(), "intact payload");
        *per_track.entry(p.track.clone()).or_insert(0u32) += 1;
        assert!(p.mime_type.eq_ignore_ascii_case("audio/opus") || p.mime_type.eq_ignore_ascii_case("video/vp8"), "{}", p.mime_type);
    }
    for t in &tracks {
        assert!(per_track.get(&t.id).copied().unwrap_or(0) >= 45, "tap got {:?} for {}", per_track.get(&t.id), t.id);
    }
    println!("the tap carried {reports} sender reports");
    // Stopped: nothing more arrives.
    pump(&mut [&mut a], 10, 500).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uplink_loss_shows_in_connection_quality() {
    let media = start_media(1);
    let (room, mut events) = room(&media, "rq").await;
    let mut clean = Peer::new("clean").await;
    let mut lossy = Peer::new("lossy").await;
    room.add_participant(clean.id.clone(), everyone()).await.expect("clean");
    room.add_participant(lossy.id.clone(), everyone()).await.expect("lossy");
    // Half of the lossy publisher's media never reaches the SFU (retransmissions included).
    let relay = LossyRelay::start_directed(media.local_addrs()[0], 2, true).await;
    clean.add_sources(&[Source::Camera]).await;
    clean.negotiate(&room).await.expect("clean publishes");
    lossy.add_sources(&[Source::Camera]).await;
    lossy.negotiate_via(&room, Some(relay.port)).await.expect("lossy publishes");
    clean.wait_connected().await;
    lossy.wait_connected().await;
    let pumping = async {
        pump(&mut [&mut clean, &mut lossy], 400, 500).await;
    };
    let (_, seen) = tokio::join!(pumping, async {
        let mut all = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                all.push(e);
            }
        }
        all
    });
    let quality_of = |who: &str| -> Vec<jiefen_media::Quality> {
        seen.iter()
            .filter_map(|e| match e {
                jiefen_media::MediaEvent::ConnectionQuality { participant, quality } if participant.0 == who => Some(*quality),
                _ => None,
            })
            .collect()
    };
    assert_eq!(quality_of("clean").last(), Some(&jiefen_media::Quality::Excellent), "{seen:?}");
    assert!(
        matches!(quality_of("lossy").last(), Some(jiefen_media::Quality::Poor | jiefen_media::Quality::Good)),
        "lossy uplink reported: {:?} (relay dropped {})",
        quality_of("lossy"),
        relay.dropped.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A subscriber behind a link that carries 700 kbit/s settles on a simulcast layer that fits (its
/// congestion controller sees the loss); one on a clean link keeps the full layer. The publisher
/// sends the load generator's VP8 fixtures in three layers (180p ~150 kbit/s, 360p ~500 kbit/s,
/// 720p ~1.5 Mbit/s) and answers keyframe requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constrained_downlink_gets_a_simulcast_layer_that_fits() {
    use std::collections::HashMap;

    let media_spec = fixture_media();
    let media = start_media(1);
    let (room, mut events) = room(&media, "bwe").await;
    let FixturePublisher { pc: publisher, states: mut publisher_states, mut camera, sent, track } =
        fixture_publisher(&room, &mut events, &media_spec, "pub").await;
    let relay = LossyRelay::start_impaired(media.local_addrs()[0], Impairment::Police(700_000), false).await;
    let mut viewers = Vec::new();
    for (name, relay) in [("slow", Some(relay.port)), ("fast", None)] {
        let (pc, states, stats) = lt_viewer(&room, name, &track, relay).await;
        viewers.push((name, pc, states, stats));
    }
    lt_connected(&mut publisher_states).await;
    for v in viewers.iter_mut() {
        lt_connected(&mut v.2).await;
    }
    // 18 s of 30 fps; from 6 s on, sample the picture size each viewer receives.
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / 30));
    let started = tokio::time::Instant::now();
    let mut samples: HashMap<&str, Vec<(u16, u16)>> = HashMap::new();
    let mut frame = 0u32;
    while started.elapsed() < Duration::from_secs(18) {
        tick.tick().await;
        camera.tick_video(&media_spec, &sent).await;
        frame += 1;
        if started.elapsed() > Duration::from_secs(6) && frame % 8 == 0 {
            for (name, _, _, stats) in &viewers {
                let size = stats.lock().expect("stats").tracks.values().find_map(|t| t.frame_size);
                samples.entry(name).or_default().extend(size);
            }
        }
    }
    let share_720 = |name: &str| {
        let s = samples.get(name).cloned().unwrap_or_default();
        s.iter().filter(|&&(w, _)| w == 1280).count() as f64 / s.len().max(1) as f64
    };
    let dropped = relay.dropped.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "FIGURE downlink estimate: 700 kbit/s link → {:.0}% of the time at 720p (sizes {:?}); clean link → {:.0}% at 720p; {dropped} packets policed",
        share_720("slow") * 100.0,
        samples.get("slow").map(|s| { let mut d = s.clone(); d.dedup(); d }),
        share_720("fast") * 100.0
    );
    assert!(samples.get("slow").is_some_and(|s| s.len() > 20), "the slow viewer received video: {samples:?}");
    assert!(share_720("slow") < 0.3, "the 700 kbit/s viewer was mostly below 720p");
    assert!(share_720("fast") > 0.9, "the clean viewer kept 720p");
    for (_, pc, _, _) in viewers {
        let _ = pc.close().await;
    }
    let _ = publisher.close().await;
}

/// Layers nobody watches are paused at the publisher and resumed when wanted: the only viewer
/// shows the video small (q), so h and f are paused after a few seconds; it then shows it large
/// and both come back (the publisher, honouring the requests, sends them again) and it receives
/// 720p again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwatched_simulcast_layers_are_paused_and_resumed() {
    use jiefen_media::MediaEvent;

    let media_spec = fixture_media();
    let media = start_media(1);
    let (room, mut events) = room(&media, "pause").await;
    let FixturePublisher { pc: publisher, states: mut publisher_states, mut camera, sent, track } =
        fixture_publisher(&room, &mut events, &media_spec, "pub").await;
    let (viewer, mut viewer_states, stats) = lt_viewer(&room, "viewer", &track, None).await;
    lt_connected(&mut publisher_states).await;
    lt_connected(&mut viewer_states).await;
    room.set_preferred_layer("viewer".into(), track.id.clone(), 0).await.expect("small");
    let size = || stats.lock().expect("stats").tracks.values().find_map(|t| t.frame_size);
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / 30));
    let started = tokio::time::Instant::now();
    let mut requests: Vec<(Duration, [bool; 3])> = Vec::new();
    let mut enlarged_at = None;
    while started.elapsed() < Duration::from_secs(16) {
        tick.tick().await;
        camera.tick_video(&media_spec, &sent).await;
        while let Ok(e) = events.try_recv() {
            if let MediaEvent::PublishLayers { participant, layers, .. } = e {
                assert_eq!(participant.0, "pub");
                requests.push((started.elapsed(), layers));
                camera.set_active_layers(&layers, &sent);
            }
        }
        // Once h and f are paused, the viewer wants the large picture again.
        if enlarged_at.is_none() && requests.last().is_some_and(|r| r.1 == [true, false, false]) {
            assert_eq!(size(), Some((320, 180)), "the small viewer gets 180p");
            room.set_preferred_layer("viewer".into(), track.id.clone(), 2).await.expect("large");
            enlarged_at = Some(started.elapsed());
        }
    }
    eprintln!("FIGURE layer pausing: requests {requests:?}, enlarged at {enlarged_at:?}, last size {:?}", size());
    assert_eq!(requests.first().map(|r| r.1), Some([true, false, false]), "h and f paused while nobody watched them");
    let paused_at = requests[0].0;
    assert!(paused_at >= Duration::from_secs(3) && paused_at < Duration::from_secs(6), "paused after the grace period: {paused_at:?}");
    let resumed = requests.get(1).expect("resumed when wanted");
    assert_eq!(resumed.1, [true, true, true]);
    assert!(resumed.0 - enlarged_at.expect("enlarged") < Duration::from_secs(1), "resumed at once: {requests:?}");
    assert!(camera.layer_active(1) && camera.layer_active(2), "the publisher sends h and f again");
    assert_eq!(size(), Some((1280, 720)), "the viewer is back on 720p");
    let _ = viewer.close().await;
    let _ = publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_to_a_track_gone_in_flight_does_not_take_the_next_m_line() {
    // Churn: a subscriber's offer names a track whose publisher left while the offer was on its
    // way. That m-line must be answered inactive, and the subscriptions after it must still bind
    // to their own m-lines (rtc binds new m-lines to the first free sender of the kind).
    let (_media, room, mut a, mut b, tracks) = a_publishing_b_joined("rg").await;
    let gone = |kind, source, mid: &str| jiefen_media::TrackInfo {
        id: jiefen_media::TrackId::new(&ParticipantId::from("left"), 1, mid),
        publisher: ParticipantId::from("left"),
        kind,
        source,
    };
    let mut wanted = vec![
        gone(jiefen_media::Kind::Audio, Source::Microphone, "0"),
        gone(jiefen_media::Kind::Video, Source::Camera, "1"),
    ];
    wanted.extend(tracks.iter().cloned());
    b.add_subscriptions(&wanted).await;
    b.negotiate(&room).await.expect("the offer with gone tracks is answered");
    a.wait_connected().await;
    b.wait_connected().await;
    pump(&mut [&mut a], 100, 1000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = b.received();
    assert_eq!(got.len(), 2, "both live tracks arrive: {got:?}");
    assert_intact(&b, 90);
}
