//! What a synthetic publisher sends. Either pre-encoded media from the fixtures (VP8 simulcast
//! in three layers with MID and RID header extensions, like a browser, and Opus; a keyframe
//! request is answered with the fixture's next key frame on that layer), or synthetic payloads of
//! a fixed size and rate. Every payload carries the trailer of [`crate::payload`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use jiefen_signaling::token::Source;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::packetizer::Payloader;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::shared::marshal::{Marshal, MarshalSize};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use crate::fixture::{self, Fixture};
use crate::payload;

/// Largest RTP payload before the trailer (a browser keeps packets near 1,200 bytes).
const MTU: usize = 1100;
const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// What publishers send.
#[derive(Debug, Clone)]
pub enum MediaSpec {
    /// VP8 packets of `bytes` at `packets_per_second`, each marked as a key frame start, and
    /// Opus-sized audio (120 bytes, 50/s).
    Synthetic { bytes: usize, packets_per_second: u32 },
    /// The fixtures: three simulcast layers and Opus.
    Fixture(Arc<Fixture>),
}

impl MediaSpec {
    /// How often the video tick runs.
    pub fn video_interval(&self) -> Duration {
        match self {
            MediaSpec::Synthetic { packets_per_second, .. } => Duration::from_micros(1_000_000 / u64::from((*packets_per_second).max(1))),
            MediaSpec::Fixture(_) => Duration::from_micros(1_000_000 / u64::from(fixture::FPS)),
        }
    }
}

/// Counters a publisher keeps.
#[derive(Debug, Default)]
pub struct SendCounters {
    pub packets: AtomicU64,
    pub keyframe_requests: AtomicU64,
    /// Requests from the SFU to pause or resume simulcast layers.
    pub layer_requests: AtomicU64,
}

/// A header extension whose value is a short string (MID, RID).
struct Text(String);

impl MarshalSize for Text {
    fn marshal_size(&self) -> usize {
        self.0.len()
    }
}

impl Marshal for Text {
    fn marshal_to(&self, buf: &mut [u8]) -> Result<usize, rtc::shared::error::Error> {
        let n = self.0.len();
        buf.get_mut(..n).ok_or(rtc::shared::error::Error::ErrBufferShort)?.copy_from_slice(self.0.as_bytes());
        Ok(n)
    }
}

struct Layer {
    ssrc: u32,
    seq: u16,
    frame: usize,
    payloader: Vp8Payloader,
    rid: &'static str,
    keyframe_wanted: Arc<AtomicBool>,
    /// The SFU may pause a layer nobody watches.
    active: bool,
}

/// One outgoing track.
pub struct Outgoing {
    pub track: Arc<TrackLocalStaticRTP>,
    pub source: Source,
    /// The m-line it was negotiated on (for the MID extension); set after the first answer.
    pub mid: Option<String>,
    layers: Vec<Layer>,
    pt: u8,
    ticks: u32,
}

impl Outgoing {
    pub fn new(source: Source, media: &MediaSpec) -> Outgoing {
        let audio = source == Source::Microphone;
        let (kind, mime, clock, channels, pt) =
            if audio { (RtpCodecKind::Audio, "audio/opus", 48000, 2, 111) } else { (RtpCodecKind::Video, "video/VP8", 90000, 0, 96) };
        let simulcast = !audio && matches!(media, MediaSpec::Fixture(_));
        let rids: &[&'static str] = if simulcast { &["q", "h", "f"] } else { &[""] };
        let layers: Vec<Layer> = rids
            .iter()
            .map(|rid| Layer {
                ssrc: rand::random(),
                seq: rand::random(),
                frame: 0,
                payloader: {
                    let mut p = Vp8Payloader::default();
                    p.enable_picture_id = true;
                    p
                },
                rid,
                keyframe_wanted: Arc::new(AtomicBool::new(false)),
                active: true,
            })
            .collect();
        let id = layers[0].ssrc;
        // Highest layer first, as Janus expects (it reads the order of `a=simulcast`; jiefen goes by
        // the RID names).
        let encodings = layers
            .iter()
            .rev()
            .map(|l| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { rid: l.rid.to_string(), ssrc: Some(l.ssrc), ..Default::default() },
                codec: RTCRtpCodec { mime_type: mime.into(), clock_rate: clock, channels, sdp_fmtp_line: String::new(), rtcp_feedback: vec![] },
                ..Default::default()
            })
            .collect();
        let track = MediaStreamTrack::new(format!("lt-{id}"), format!("lt-{id}-{source:?}"), format!("{source:?}"), kind, encodings);
        Outgoing { track: Arc::new(TrackLocalStaticRTP::new(track)), source, mid: None, layers, pt, ticks: 0 }
    }

    /// Pauses and resumes simulcast layers (lowest first) as the SFU asks; a resumed layer
    /// starts with a key frame, as a browser's encoder does.
    pub fn set_active_layers(&mut self, active: &[bool], counters: &SendCounters) {
        if self.layers.len() < 2 {
            return;
        }
        counters.layer_requests.fetch_add(1, Ordering::Relaxed);
        for (l, on) in self.layers.iter_mut().zip(active) {
            if *on && !l.active {
                l.keyframe_wanted.store(true, Ordering::Relaxed);
            }
            l.active = *on;
        }
    }

    /// Whether a simulcast layer (0 = q) is being sent.
    pub fn layer_active(&self, layer: usize) -> bool {
        self.layers.get(layer).is_some_and(|l| l.active)
    }

    /// Answers keyframe requests for this track (PLI/FIR naming one of its SSRCs) until the
    /// track is unbound.
    pub fn serve_keyframe_requests(&self, counters: Arc<SendCounters>) {
        let track = self.track.clone();
        let wanted: Vec<(u32, Arc<AtomicBool>)> = self.layers.iter().map(|l| (l.ssrc, l.keyframe_wanted.clone())).collect();
        tokio::spawn(async move {
            while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
                for p in packets {
                    let any = p.as_any();
                    let media_ssrcs: Vec<u32> = if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                        vec![pli.media_ssrc]
                    } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                        fir.fir.iter().map(|e| e.ssrc).collect()
                    } else {
                        continue;
                    };
                    for (ssrc, flag) in &wanted {
                        if media_ssrcs.contains(ssrc) {
                            flag.store(true, Ordering::Relaxed);
                            counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
    }

    async fn write(&mut self, layer: usize, body: &[u8], timestamp: u32, marker: bool) -> bool {
        let mid = self.mid.clone();
        let pt = self.pt;
        let l = &mut self.layers[layer];
        l.seq = l.seq.wrapping_add(1);
        let packet = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header { version: 2, payload_type: pt, sequence_number: l.seq, timestamp, ssrc: l.ssrc, marker, ..Default::default() },
            payload: payload::stamp(body, if pt == 96 { vp8_descriptor_len(body) } else { 0 }),
        };
        let sent = match (mid, l.rid) {
            // A browser puts MID and RID on simulcast packets so the SFU can tell the layers apart.
            (Some(mid), rid) if !rid.is_empty() => {
                let ext = [
                    HeaderExtension::Custom { uri: MID_URI.into(), extension: Box::new(Text(mid)) },
                    HeaderExtension::Custom { uri: RID_URI.into(), extension: Box::new(Text(rid.to_string())) },
                ];
                self.track.write_rtp_with_extensions(packet, &ext).await
            }
            _ => self.track.write_rtp(packet).await,
        };
        sent.is_ok()
    }

    /// One audio packet (20 ms).
    pub async fn tick_audio(&mut self, media: &MediaSpec, counters: &SendCounters) {
        self.ticks = self.ticks.wrapping_add(1);
        let timestamp = self.ticks.wrapping_mul(960);
        let sent = match media {
            MediaSpec::Fixture(fx) => {
                let packet = fx.audio[self.ticks as usize % fx.audio.len()].clone();
                self.write(0, &packet, timestamp, false).await
            }
            MediaSpec::Synthetic { .. } => self.write(0, &[0xfc; 104], timestamp, false).await,
        };
        if sent {
            counters.packets.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One video tick: a frame on every layer, or one synthetic packet.
    pub async fn tick_video(&mut self, media: &MediaSpec, counters: &SendCounters) {
        self.ticks = self.ticks.wrapping_add(1);
        match media {
            MediaSpec::Synthetic { bytes, packets_per_second } => {
                let timestamp = self.ticks.wrapping_mul(90_000 / (*packets_per_second).max(1));
                let p = payload::synthetic_body(u64::from(self.ticks), *bytes);
                if self.write(0, &p, timestamp, true).await {
                    counters.packets.fetch_add(1, Ordering::Relaxed);
                }
            }
            MediaSpec::Fixture(fx) => {
                let timestamp = self.ticks.wrapping_mul(90_000 / fixture::FPS);
                for layer in 0..self.layers.len() {
                    let l = &mut self.layers[layer];
                    if !l.active {
                        continue;
                    }
                    if l.keyframe_wanted.swap(false, Ordering::Relaxed) && !fx.layers[layer][l.frame].keyframe {
                        l.frame = fx.next_keyframe(layer, l.frame);
                    }
                    let frame = &fx.layers[layer][l.frame];
                    l.frame = (l.frame + 1) % fx.layers[layer].len();
                    let Ok(payloads) = l.payloader.payload(MTU, &frame.data) else { continue };
                    let n = payloads.len();
                    for (i, p) in payloads.iter().enumerate() {
                        if self.write(layer, p, timestamp, i + 1 == n).await {
                            counters.packets.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
}

/// The length of a VP8 payload descriptor (RFC 7741 §4.2). An SFU may rewrite it (Janus renumbers
/// picture ids across simulcast layers), so the payload checksum starts after it.
fn vp8_descriptor_len(p: &[u8]) -> usize {
    let Some(&first) = p.first() else { return 0 };
    if first & 0x80 == 0 {
        return 1;
    }
    let Some(&x) = p.get(1) else { return p.len() };
    let mut n = 2;
    if x & 0x80 != 0 {
        n += if p.get(n).is_some_and(|b| b & 0x80 != 0) { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        n += 1;
    }
    if x & 0x30 != 0 {
        n += 1;
    }
    n.min(p.len())
}

/// Outgoing tracks for a publisher of audio and/or video.
pub fn outgoing(audio: bool, video: bool, media: &MediaSpec) -> Vec<Outgoing> {
    let mut outs = Vec::new();
    if audio {
        outs.push(Outgoing::new(Source::Microphone, media));
    }
    if video {
        outs.push(Outgoing::new(Source::Camera, media));
    }
    outs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_descriptor_lengths() {
        assert_eq!(vp8_descriptor_len(&[0x10, 0xaa]), 1);
        // X, then I with a 15-bit picture id.
        assert_eq!(vp8_descriptor_len(&[0x90, 0x80, 0x81, 0x23, 0xaa]), 4);
        // X, I (7-bit), L, T.
        assert_eq!(vp8_descriptor_len(&[0x90, 0xe0, 0x05, 0x01, 0x20, 0xaa]), 5);
        assert_eq!(vp8_descriptor_len(&[0x90]), 1);
        assert_eq!(vp8_descriptor_len(&[]), 0);
    }
}
