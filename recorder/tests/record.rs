//! Records known media (FFmpeg's test pattern and a 440 Hz tone, encoded by FFmpeg, packetized
//! as a browser would) through the recorder, then checks the files with FFmpeg's own probing
//! and decoding: duration, streams, codecs, every frame decodable, audio/video start aligned;
//! with loss and reordering; a copy taken mid-recording (a crash) is readable; a flipped byte
//! changes the hash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jiefen_media::{Kind, ParticipantId, Source, TapPacket, TrackId};
use jiefen_recorder::RoomRecording;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::codec::opus::OpusPayloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;

const SECS: u32 = 4;
const FPS: u32 = 30;

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg").args(["-loglevel", "error", "-y"]).args(args).status().expect("ffmpeg is installed (scripts/deps.sh test)");
    assert!(status.success(), "ffmpeg {args:?}");
}

struct Fixtures {
    vp8: Vec<Vec<u8>>,
    h264: Vec<Vec<u8>>,
    opus: Vec<Vec<u8>>,
}

fn fixtures(dir: &Path) -> Fixtures {
    let d = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let pattern = format!("testsrc=size=320x240:rate={FPS}:duration={SECS}");
    ffmpeg(&["-f", "lavfi", "-i", &pattern, "-c:v", "libvpx", "-g", "30", "-auto-alt-ref", "0", "-b:v", "300k", &d("v.ivf")]);
    ffmpeg(&["-f", "lavfi", "-i", &pattern, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-g", "30", "-bsf:v", "h264_mp4toannexb", "-f", "h264", &d("v.h264")]);
    ffmpeg(&["-f", "lavfi", "-i", &format!("sine=frequency=440:sample_rate=48000:duration={SECS}"), "-c:a", "libopus", "-frame_duration", "20", "-ac", "2", &d("a.ogg")]);
    Fixtures { vp8: ivf_frames(&std::fs::read(dir.join("v.ivf")).expect("ivf")), h264: annexb_access_units(&std::fs::read(dir.join("v.h264")).expect("h264")), opus: ogg_packets(&std::fs::read(dir.join("a.ogg")).expect("ogg")) }
}

fn ivf_frames(data: &[u8]) -> Vec<Vec<u8>> {
    let header_len = u16::from_le_bytes([data[6], data[7]]) as usize;
    let mut out = Vec::new();
    let mut rest = &data[header_len..];
    while rest.len() >= 12 {
        let size = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        out.push(rest[12..12 + size].to_vec());
        rest = &rest[12 + size..];
    }
    out
}

/// Annex-B access units: non-VCL NAL units attach to the slice that follows (one slice per frame).
fn annexb_access_units(data: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut aus = Vec::new();
    let mut au = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|n| n - 3).unwrap_or(data.len());
        let end = if end > s && data[end - 1] == 0 { end - 1 } else { end };
        let nal = &data[s..end];
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(nal);
        if matches!(nal[0] & 0x1f, 1 | 5) {
            aus.push(std::mem::take(&mut au));
        }
    }
    aus
}

/// Opus packets from an Ogg file (the two header packets skipped).
fn ogg_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut rest = data;
    while rest.len() >= 27 && &rest[..4] == b"OggS" {
        let segments = rest[26] as usize;
        let table = &rest[27..27 + segments];
        let mut body = &rest[27 + segments..];
        for &lace in table {
            current.extend_from_slice(&body[..lace as usize]);
            body = &body[lace as usize..];
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        let total: usize = table.iter().map(|l| *l as usize).sum();
        rest = &rest[27 + segments + total..];
    }
    packets.into_iter().skip(2).collect()
}

struct Stream {
    track: TrackId,
    kind: Kind,
    source: Source,
    mime: &'static str,
    clock: u32,
    payloader: Box<dyn Payloader>,
    ssrc: u32,
    seq: u16,
}

/// Packetizes `frames` as RTP at `step` ticks per frame starting at `ts0`; (send offset, packet).
fn packetize(s: &mut Stream, frames: &[Vec<u8>], step: u32, ts0: u32, frame_us: u64) -> Vec<(Duration, TapPacket)> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let payloads = s.payloader.payload(1100, &Bytes::from(f.clone())).expect("payload");
        let n = payloads.len();
        for (k, p) in payloads.into_iter().enumerate() {
            let mut packet = rtc::rtp::Packet::default();
            packet.header.version = 2;
            packet.header.ssrc = s.ssrc;
            packet.header.sequence_number = s.seq;
            s.seq = s.seq.wrapping_add(1);
            packet.header.timestamp = ts0.wrapping_add(step.wrapping_mul(i as u32));
            packet.header.marker = k + 1 == n;
            packet.payload = p;
            out.push((
                Duration::from_micros(frame_us * i as u64),
                TapPacket {
                    track: s.track.clone(),
                    publisher: ParticipantId::from("zhang"),
                    kind: s.kind,
                    source: s.source,
                    layer: 0,
                    mime_type: s.mime.to_string(),
                    clock_rate: s.clock,
                    packet,
                    received_at: Instant::now(),
                },
            ));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn stream(track: &str, kind: Kind, source: Source, mime: &'static str, clock: u32, payloader: Box<dyn Payloader>, seq: u16, ssrc: u32) -> Stream {
    Stream { track: TrackId::from(track), kind, source, mime, clock, payloader, ssrc, seq }
}

/// How a recording is fed beyond its media: network delay of the video, and sender reports.
#[derive(Default, Clone, Copy)]
struct Feed {
    video_delay: Duration,
    sender_reports: bool,
}

/// Records a video track and the tone, interleaved in time order; `mangle` may drop or reorder.
fn record(dir: &Path, video_mime: &'static str, video: &[Vec<u8>], audio: &[Vec<u8>], mangle: impl Fn(Vec<(Duration, TapPacket)>) -> Vec<(Duration, TapPacket)>, crash_copy: Option<&Path>) -> jiefen_recorder::Manifest {
    record_with(dir, video_mime, video, audio, mangle, crash_copy, Feed::default())
}

const VIDEO_TS0: u32 = u32::MAX - 40_000;
const AUDIO_TS0: u32 = 7;

fn record_with(dir: &Path, video_mime: &'static str, video: &[Vec<u8>], audio: &[Vec<u8>], mangle: impl Fn(Vec<(Duration, TapPacket)>) -> Vec<(Duration, TapPacket)>, crash_copy: Option<&Path>, feed: Feed) -> jiefen_recorder::Manifest {
    let payloader: Box<dyn Payloader> = if video_mime == "video/VP8" { Box::new(Vp8Payloader::default()) } else { Box::new(H264Payloader::default()) };
    // Sequence numbers start near the wrap, timestamps near 2^32: both must be handled.
    let mut v = stream("zhang/1/0", Kind::Video, Source::Camera, video_mime, 90_000, payloader, 65_500, 1234);
    let mut a = stream("zhang/1/1", Kind::Audio, Source::Microphone, "audio/opus", 48_000, Box::new(OpusPayloader), 100, 5678);
    let mut packets: Vec<(Duration, TapPacket)> = packetize(&mut v, video, 90_000 / FPS, VIDEO_TS0, 1_000_000 / u64::from(FPS)).into_iter().map(|(t, p)| (t + feed.video_delay, p)).collect();
    packets.extend(packetize(&mut a, audio, 960, AUDIO_TS0, 20_000));
    packets.sort_by_key(|(t, _)| *t);
    let packets = mangle(packets);
    let mut rec = RoomRecording::new("room-1", dir).expect("recording");
    if feed.sender_reports {
        // Both streams were captured at the same wallclock instant N (the sender's clock).
        let n = 3_900_000_000u64 << 32;
        rec.sender_report(jiefen_media::TapSenderReport { ssrc: 1234, ntp_time: n, rtp_time: VIDEO_TS0 });
        rec.sender_report(jiefen_media::TapSenderReport { ssrc: 5678, ntp_time: n, rtp_time: AUDIO_TS0 });
    }
    let t0 = Instant::now();
    let half = packets.len() / 2;
    for (i, (offset, mut p)) in packets.into_iter().enumerate() {
        p.received_at = t0 + offset;
        rec.push(p).expect("push");
        if i == half
            && let Some(copy) = crash_copy
        {
            // What is on disk at this moment is what a crash would leave.
            for e in std::fs::read_dir(dir).expect("dir").flatten() {
                std::fs::copy(e.path(), copy.join(e.file_name())).expect("copy");
            }
        }
    }
    rec.tick(t0 + Duration::from_secs(60)).expect("tick");
    rec.finish(0).expect("finish").0
}

fn probe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json"]).arg(path).output().expect("ffprobe");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Decodes every frame; returns FFmpeg's error output (empty when clean).
fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(path).args(["-f", "null", "-"]).output().expect("ffmpeg");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).expect("dir").flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect();
    v.sort();
    v
}

fn check_clean(dir: &Path, manifest: &jiefen_recorder::Manifest, video_codec: &str, video_ext: &str) {
    let video = &files(dir, video_ext)[0];
    let audio = files(dir, "webm").into_iter().find(|p| p.to_string_lossy().contains("microphone")).expect("audio file");
    let v = probe(video);
    let a = probe(&audio);
    assert_eq!(v["streams"][0]["codec_name"], video_codec, "{v}");
    assert_eq!((v["streams"][0]["width"].as_i64(), v["streams"][0]["height"].as_i64()), (Some(320), Some(240)));
    assert_eq!(a["streams"][0]["codec_name"], "opus", "{a}");
    let frames: i64 = v["streams"][0]["nb_read_frames"].as_str().and_then(|f| f.parse().ok()).unwrap_or(0);
    assert_eq!(frames, i64::from(SECS * FPS), "every frame is in the file and decodes");
    let duration = |p: &serde_json::Value| p["format"]["duration"].as_str().and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
    for (name, p) in [("video", &v), ("audio", &a)] {
        assert!((duration(p) - f64::from(SECS)).abs() <= 0.5, "{name} lasts {} s", duration(p));
    }
    assert_eq!(decode_errors(video), "");
    assert_eq!(decode_errors(&audio), "");
    // Audio and video start together on the recording's clock.
    let starts: Vec<i64> = manifest.tracks.iter().map(|t| t.start_ms).collect();
    assert!(starts.iter().max().unwrap_or(&0) - starts.iter().min().unwrap_or(&0) <= 80, "{manifest:?}");
    for t in &manifest.tracks {
        assert!(t.problem.is_none() && t.sha256.is_some(), "{t:?}");
        assert_eq!(t.sha256.as_deref(), Some(jiefen_recorder::hash::sha256_file(&dir.join(&t.file)).expect("hash").0.as_str()));
    }
}

#[test]
fn vp8_and_opus_record_cleanly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fx = fixtures(tmp.path());
    let out = tmp.path().join("rec");
    let manifest = record(&out, "video/VP8", &fx.vp8, &fx.opus, |p| p, None);
    check_clean(&out, &manifest, "vp8", "webm");
}

#[test]
fn h264_and_opus_record_cleanly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fx = fixtures(tmp.path());
    let out = tmp.path().join("rec");
    let manifest = record(&out, "video/H264", &fx.h264, &fx.opus, |p| p, None);
    check_clean(&out, &manifest, "h264", "mkv");
}

#[test]
fn loss_and_reordering_never_break_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fx = fixtures(tmp.path());
    for (mime, ext, frames) in [("video/VP8", "webm", &fx.vp8), ("video/H264", "mkv", &fx.h264)] {
        let out = tmp.path().join(format!("rec-{ext}"));
        let manifest = record(&out, mime, frames, &fx.opus, |mut p| {
            // Swap neighbours every 7th packet and drop every 53rd video packet.
            for i in (0..p.len().saturating_sub(1)).step_by(7) {
                p.swap(i, i + 1);
            }
            let mut video = 0;
            p.into_iter()
                .filter(|(_, x)| {
                    if x.kind != Kind::Video {
                        return true;
                    }
                    video += 1;
                    video % 53 != 0
                })
                .collect()
        }, None);
        let video = manifest.tracks.iter().find(|t| t.source == "camera").expect("video");
        assert!(video.lost_packets > 0 && video.dropped_frames > 0, "{video:?}");
        assert!(video.frames > u64::from(SECS * FPS) / 3, "recording resumes at keyframes: {video:?}");
        let path = files(&out, ext).into_iter().find(|p| p.to_string_lossy().contains("camera")).expect("file");
        let errors = decode_errors(&path);
        assert!(errors.is_empty(), "{mime}: frames written after loss decode cleanly: {errors}");
    }
}

#[test]
fn a_crash_leaves_a_readable_file_and_a_flipped_byte_is_caught() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fx = fixtures(tmp.path());
    let out = tmp.path().join("rec");
    let crash = tmp.path().join("crash");
    std::fs::create_dir_all(&crash).expect("dir");
    let manifest = record(&out, "video/VP8", &fx.vp8, &fx.opus, |p| p, Some(&crash));
    let cut = files(&crash, "webm").into_iter().find(|p| p.to_string_lossy().contains("camera")).expect("file");
    let p = probe(&cut);
    let frames: i64 = p["streams"][0]["nb_read_frames"].as_str().and_then(|f| f.parse().ok()).unwrap_or(0);
    assert!(frames >= i64::from(FPS), "the part written before the crash plays: {frames} frames");
    assert_eq!(decode_errors(&cut), "");

    let video = manifest.tracks.iter().find(|t| t.source == "camera").expect("video");
    let path = out.join(&video.file);
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");
    assert_ne!(Some(jiefen_recorder::hash::sha256_file(&path).expect("hash").0), video.sha256);
}

#[test]
fn an_unknown_codec_is_flagged_not_fatal() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut rec = RoomRecording::new("r", tmp.path()).expect("rec");
    let packet = rtc::rtp::Packet { payload: Bytes::from_static(&[1, 2, 3]), ..Default::default() };
    rec.push(TapPacket {
        track: TrackId::from("x/1/0"),
        publisher: ParticipantId::from("x"),
        kind: Kind::Video,
        source: Source::Camera,
        layer: 0,
        mime_type: "video/AV1".into(),
        clock_rate: 90_000,
        packet,
        received_at: Instant::now(),
    })
    .expect("push");
    let (manifest, _) = rec.finish(0).expect("finish");
    assert!(manifest.tracks[0].problem.as_deref().is_some_and(|p| p.contains("AV1")), "{manifest:?}");
}

#[test]
fn sender_reports_keep_audio_and_video_in_sync_despite_network_delay() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fx = fixtures(tmp.path());
    let start_gap = |m: &jiefen_recorder::Manifest| {
        let t = |s: &str| m.tracks.iter().find(|t| t.source == s).map(|t| t.start_ms).unwrap_or(i64::MAX);
        t("camera") - t("microphone")
    };
    let delay = Feed { video_delay: Duration::from_millis(150), sender_reports: false };
    let arrival = record_with(&tmp.path().join("arrival"), "video/VP8", &fx.vp8, &fx.opus, |p| p, None, delay);
    assert!((start_gap(&arrival) - 150).abs() <= 25, "by arrival, video lags by the network delay: {}", start_gap(&arrival));
    let synced = record_with(&tmp.path().join("synced"), "video/VP8", &fx.vp8, &fx.opus, |p| p, None, Feed { sender_reports: true, ..delay });
    assert!(start_gap(&synced).abs() <= 25, "with sender reports, both start at their capture time: {}", start_gap(&synced));
    assert!(synced.tracks.iter().all(|t| t.sync == "sender_report"), "{:?}", synced.tracks);
}

#[test]
fn a_simulcast_layer_switch_keeps_one_playable_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fx = fixtures(tmp.path());
    let dir = tmp.path().join("switch");
    let mut low = stream("zhang/1/0", Kind::Video, Source::Camera, "video/VP8", 90_000, Box::new(Vp8Payloader::default()), 100, 1111);
    let mut high = stream("zhang/1/0", Kind::Video, Source::Camera, "video/VP8", 90_000, Box::new(Vp8Payloader::default()), 9_000, 2222);
    let half = fx.vp8.len() / 2;
    // The low layer for the first half; then the high layer (its own SSRC, sequence numbers and
    // timestamp base) takes over, starting mid-GOP so the switch must wait for its keyframe.
    let mut packets = packetize(&mut low, &fx.vp8[..half], 3000, 500, 33_333);
    let later = packetize(&mut high, &fx.vp8[half - 5..], 3000, 7_000_000, 33_333);
    packets.extend(later.into_iter().map(|(t, mut p)| {
        p.layer = 1;
        (t + Duration::from_micros(33_333 * (half as u64 - 5)), p)
    }));
    packets.sort_by_key(|(t, _)| *t);
    let mut rec = RoomRecording::new("room-1", &dir).expect("recording");
    let t0 = Instant::now();
    for (offset, mut p) in packets {
        p.received_at = t0 + offset;
        rec.push(p).expect("push");
    }
    rec.tick(t0 + Duration::from_secs(60)).expect("tick");
    let (manifest, _) = rec.finish(0).expect("finish");
    let video = &manifest.tracks[0];
    assert_eq!(video.layer_switches, 1, "{video:?}");
    assert!(video.frames as usize >= fx.vp8.len() - 40, "little is lost around the switch: {video:?}");
    let path = dir.join(&video.file);
    assert_eq!(decode_errors(&path), "");
    let p = probe(&path);
    let duration: f64 = p["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    assert!((duration - f64::from(SECS)).abs() <= 0.5, "one continuous timeline across the switch: {duration}");
}
