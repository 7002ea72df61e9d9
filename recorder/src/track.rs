//! One published track's recording: a reorder buffer per simulcast layer, frame assembly with
//! the codec's depacketizer, keyframe waits after loss or a layer switch, and the Matroska file.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::codec::opus::OpusPacket;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

use crate::codec;
use crate::ebml::{MkvWriter, TrackHeader, TrackKind, opus_head};

/// How long a gap in sequence numbers is waited for before the missing packets count as lost.
pub const REORDER_WAIT: Duration = Duration::from_millis(200);
/// Packets held while waiting; past this the oldest gap is given up at once.
pub const REORDER_MAX: usize = 1024;
/// A layer that sent nothing for this long no longer counts as flowing.
pub const LAYER_IDLE: Duration = Duration::from_millis(1500);
/// Opus decoder delay written to the file (libopus' usual 312 samples at 48 kHz = 6.5 ms).
const OPUS_PRE_SKIP: u16 = 312;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    H264,
    Opus,
}

impl Codec {
    pub fn from_mime(mime: &str) -> Option<Codec> {
        match mime.to_ascii_lowercase().as_str() {
            "video/vp8" => Some(Codec::Vp8),
            "video/h264" => Some(Codec::H264),
            "audio/opus" => Some(Codec::Opus),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8",
            Codec::H264 => "h264",
            Codec::Opus => "opus",
        }
    }
    fn is_video(self) -> bool {
        self != Codec::Opus
    }
}

enum AnyDepacketizer {
    Vp8(Vp8Packet),
    H264(H264Packet),
    Opus(OpusPacket),
}

impl AnyDepacketizer {
    fn new(codec: Codec) -> AnyDepacketizer {
        match codec {
            Codec::Vp8 => AnyDepacketizer::Vp8(Vp8Packet::default()),
            Codec::H264 => {
                let mut d = H264Packet::default();
                d.is_avc = true;
                AnyDepacketizer::H264(d)
            }
            Codec::Opus => AnyDepacketizer::Opus(OpusPacket),
        }
    }
    fn depacketize(&mut self, payload: &Bytes) -> Option<Bytes> {
        match self {
            AnyDepacketizer::Vp8(d) => d.depacketize(payload).ok(),
            AnyDepacketizer::H264(d) => d.depacketize(payload).ok(),
            AnyDepacketizer::Opus(d) => d.depacketize(payload).ok(),
        }
    }
}

/// One simulcast layer's packets on their way to frames.
struct Layer {
    depacketizer: AnyDepacketizer,
    ssrc: u32,
    pending: BTreeMap<u64, (rtc::rtp::Packet, Instant)>,
    next_seq: Option<u64>,
    last_seq16: Option<u16>,
    seq_cycles: u64,
    frame: Vec<u8>,
    frame_ts: Option<u32>,
    frame_broken: bool,
    last_seen: Instant,
    lost: u64,
}

impl Layer {
    fn new(codec: Codec, now: Instant) -> Layer {
        Layer {
            depacketizer: AnyDepacketizer::new(codec),
            ssrc: 0,
            pending: BTreeMap::new(),
            next_seq: None,
            last_seq16: None,
            seq_cycles: 0,
            frame: Vec::new(),
            frame_ts: None,
            frame_broken: false,
            last_seen: now,
            lost: 0,
        }
    }

    fn extend_seq(&mut self, seq: u16) -> u64 {
        if let Some(last) = self.last_seq16
            && seq < 0x1000
            && last > 0xf000
        {
            self.seq_cycles += 1 << 16;
        }
        let ext = self.seq_cycles + u64::from(seq);
        // A late packet from before a wrap belongs to the previous cycle.
        let ext = if seq > 0xf000 && self.last_seq16.is_some_and(|l| l < 0x1000) && self.seq_cycles > 0 { ext - (1 << 16) } else { ext };
        if self.last_seq16.is_none_or(|l| seq.wrapping_sub(l) < 0x8000) {
            self.last_seq16 = Some(seq);
        }
        ext
    }

    /// Takes a packet in; returns the frames it completes, in order: (rtp timestamp, data, broken).
    fn push(&mut self, codec: Codec, packet: rtc::rtp::Packet, now: Instant) -> Vec<(u32, Vec<u8>, bool)> {
        self.last_seen = now;
        self.ssrc = packet.header.ssrc;
        let ext = self.extend_seq(packet.header.sequence_number);
        if self.next_seq.is_some_and(|n| ext < n) {
            return Vec::new(); // a duplicate or a packet already given up on
        }
        self.next_seq.get_or_insert(ext);
        self.pending.insert(ext, (packet, now));
        self.release(codec, now)
    }

    fn release(&mut self, codec: Codec, now: Instant) -> Vec<(u32, Vec<u8>, bool)> {
        let mut out = Vec::new();
        while let Some(next) = self.next_seq {
            if let Some((packet, _)) = self.pending.remove(&next) {
                self.next_seq = Some(next + 1);
                self.assemble(codec, packet, &mut out);
                continue;
            }
            // A gap: give up on it once the oldest waiting packet has waited long enough.
            let Some((&first, (_, since))) = self.pending.iter().next() else { break };
            if now.duration_since(*since) >= REORDER_WAIT || self.pending.len() > REORDER_MAX {
                self.lost += first - next;
                self.next_seq = Some(first);
                self.frame_broken = true;
                continue;
            }
            break;
        }
        out
    }

    fn assemble(&mut self, codec: Codec, packet: rtc::rtp::Packet, out: &mut Vec<(u32, Vec<u8>, bool)>) {
        let ts = packet.header.timestamp;
        if packet.payload.is_empty() {
            return; // padding
        }
        if !codec.is_video() {
            if let Some(data) = self.depacketizer.depacketize(&packet.payload) {
                out.push((ts, data.to_vec(), false));
            }
            self.frame_broken = false;
            return;
        }
        if self.frame_ts.is_some_and(|t| t != ts) {
            // The previous frame never saw its marker: its last packet was lost.
            self.frame.clear();
            self.frame_broken = true;
        }
        self.frame_ts = Some(ts);
        match self.depacketizer.depacketize(&packet.payload) {
            Some(data) => self.frame.extend_from_slice(&data),
            None => self.frame_broken = true,
        }
        if packet.header.marker {
            let frame = std::mem::take(&mut self.frame);
            out.push((ts, frame, self.frame_broken));
            self.frame_broken = false;
            self.frame_ts = None;
        }
    }
}

fn arrival() -> String {
    "arrival".into()
}

/// What a finished track reports for the manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct TrackSummary {
    pub file: String,
    pub publisher: String,
    pub track: String,
    pub source: String,
    pub codec: String,
    /// Where the track starts on the recording's clock (ms from its start).
    pub start_ms: i64,
    pub end_ms: i64,
    pub frames: u64,
    pub packets: u64,
    pub lost_packets: u64,
    pub dropped_frames: u64,
    pub layer_switches: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// How the track's timestamps were put on the recording's clock: `sender_report` (RTP time
    /// mapped to the publisher's wallclock, so its audio and video are in sync) or `arrival`.
    /// (Manifests written before this field existed read as `arrival`.)
    #[serde(default = "arrival")]
    pub sync: String,
    pub bytes: u64,
    pub sha256: Option<String>,
    pub sm3: Option<String>,
    /// Why this track could not be recorded (fully), if it could not.
    pub problem: Option<String>,
}

pub struct TrackRecorder {
    codec: Option<Codec>,
    path: PathBuf,
    title: String,
    layers: HashMap<u8, Layer>,
    current_layer: Option<u8>,
    /// (rtp timestamp, recording ms) of the current layer's first written frame.
    anchor: Option<(u32, i64)>,
    clock_rate: u32,
    writer: Option<MkvWriter<BufWriter<File>>>,
    need_keyframe: bool,
    summary: TrackSummary,
    last_unwrapped: Option<(u32, i64)>,
    /// Whether a sender report has placed a frame of this track yet.
    use_sender_reports: Option<bool>,
}

/// Everything a track needs from the rest of the room to place a frame in time.
pub struct Clock<'a> {
    /// Latest sender report per SSRC.
    pub reports: &'a HashMap<u32, jiefen_media::TapSenderReport>,
    /// Recording ms minus sender-wallclock ms for this publisher, fixed at its first mapped frame.
    pub publisher_offset: &'a mut Option<i64>,
}

/// An NTP timestamp (32.32 fixed point seconds) in milliseconds.
fn ntp_ms(ntp: u64) -> i64 {
    let secs = (ntp >> 32) as i64;
    let frac = (ntp & 0xffff_ffff) as i64;
    secs * 1000 + ((frac * 1000) >> 32)
}

impl TrackRecorder {
    pub fn new(path: PathBuf, publisher: &str, track: &str, source: &str, mime: &str, clock_rate: u32) -> TrackRecorder {
        let codec = Codec::from_mime(mime);
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        TrackRecorder {
            codec,
            path,
            title: format!("{publisher} {source}"),
            layers: HashMap::new(),
            current_layer: None,
            anchor: None,
            clock_rate: clock_rate.max(1),
            writer: None,
            need_keyframe: true,
            last_unwrapped: None,
            use_sender_reports: None,
            summary: TrackSummary {
                file,
                publisher: publisher.into(),
                track: track.into(),
                source: source.into(),
                codec: codec.map(|c| c.name().to_string()).unwrap_or_else(|| mime.to_string()),
                start_ms: 0,
                end_ms: 0,
                frames: 0,
                packets: 0,
                lost_packets: 0,
                dropped_frames: 0,
                layer_switches: 0,
                width: None,
                height: None,
                sync: "arrival".into(),
                bytes: 0,
                sha256: None,
                sm3: None,
                problem: codec.is_none().then(|| format!("codec {mime} is not recorded")),
            },
        }
    }

    /// The layer to record: the highest one still flowing.
    fn preferred_layer(&self, now: Instant) -> Option<u8> {
        self.layers.iter().filter(|(_, l)| now.duration_since(l.last_seen) < LAYER_IDLE).map(|(k, _)| *k).max()
    }

    /// One packet of layer `layer`, received `at_ms` after the recording started.
    pub fn push(&mut self, layer: u8, packet: rtc::rtp::Packet, now: Instant, at_ms: i64, clock: &mut Clock<'_>) -> std::io::Result<()> {
        self.summary.packets += 1;
        let Some(codec) = self.codec else { return Ok(()) };
        let frames = self.layers.entry(layer).or_insert_with(|| Layer::new(codec, now)).push(codec, packet, now);
        let preferred = self.preferred_layer(now);
        for (ts, data, broken) in frames {
            self.frame(codec, layer, preferred, ts, data, broken, at_ms, clock)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn frame(&mut self, codec: Codec, layer: u8, preferred: Option<u8>, ts: u32, data: Vec<u8>, broken: bool, at_ms: i64, clock: &mut Clock<'_>) -> std::io::Result<()> {
        let keyframe = match codec {
            Codec::Vp8 => codec::vp8_is_keyframe(&data),
            Codec::H264 => codec::h264_is_keyframe(&data),
            Codec::Opus => true,
        };
        if self.current_layer != Some(layer) {
            // Another layer: switch to it only at its keyframe, and only if it is the one wanted.
            // At the start any layer will do; later only the highest layer still flowing.
            let wanted = self.current_layer.is_none() || preferred == Some(layer);
            if !(keyframe && !broken && wanted) {
                return Ok(());
            }
            if self.current_layer.is_some() {
                self.summary.layer_switches += 1;
            }
            self.current_layer = Some(layer);
            // Layers have their own RTP timestamp bases: re-anchor at the switch.
            let last = self.writer.as_ref().and_then(|w| w.last_ms()).unwrap_or(i64::MIN);
            self.anchor = Some((ts, at_ms.max(last + 1)));
            self.last_unwrapped = None;
            self.need_keyframe = false;
        }
        if broken {
            self.summary.dropped_frames += 1;
            if codec.is_video() {
                self.need_keyframe = true;
            }
            return Ok(());
        }
        if self.need_keyframe && !keyframe {
            self.summary.dropped_frames += 1;
            return Ok(());
        }
        self.need_keyframe = false;
        if self.writer.is_none() {
            self.open(codec, &data)?;
            if self.writer.is_none() {
                self.summary.dropped_frames += 1;
                self.need_keyframe = true;
                return Ok(());
            }
        }
        let ssrc = self.layers.get(&layer).map(|l| l.ssrc).unwrap_or(0);
        let (anchor_ts, anchor_ms) = *self.anchor.get_or_insert((ts, at_ms));
        let by_arrival = anchor_ms + self.unwrapped_delta(anchor_ts, ts) * 1000 / i64::from(self.clock_rate);
        let ms = match clock.reports.get(&ssrc) {
            // The sender's wallclock at capture, shifted onto the recording clock by one offset
            // per publisher: its audio and video stay in sync whatever their network delays.
            // The publisher's first mapped frame fixes the offset where its timeline already is,
            // so a track that began by arrival (no report yet) goes on without a jump.
            Some(sr) => {
                let capture = ntp_ms(sr.ntp_time) + i64::from(ts.wrapping_sub(sr.rtp_time) as i32) * 1000 / i64::from(self.clock_rate);
                let offset = *clock.publisher_offset.get_or_insert(by_arrival - capture);
                self.use_sender_reports = Some(true);
                self.summary.sync = "sender_report".into();
                capture + offset
            }
            None => by_arrival,
        };
        if self.summary.frames == 0 {
            self.summary.start_ms = ms;
        }
        if let Some(w) = self.writer.as_mut() {
            w.write_frame(ms, keyframe, &data)?;
            self.summary.end_ms = w.last_ms().unwrap_or(ms);
        }
        self.summary.frames += 1;
        Ok(())
    }

    /// `ts - anchor` in RTP ticks, across 32-bit wraps.
    fn unwrapped_delta(&mut self, anchor: u32, ts: u32) -> i64 {
        let delta = i64::from(ts.wrapping_sub(anchor) as i32);
        let value = match self.last_unwrapped {
            Some((last_ts, last_value)) => last_value + i64::from(ts.wrapping_sub(last_ts) as i32),
            None => delta,
        };
        self.last_unwrapped = Some((ts, value));
        value
    }

    /// Opens the file at the first keyframe, when the picture size (and H.264's SPS/PPS) is known.
    fn open(&mut self, codec: Codec, keyframe: &[u8]) -> std::io::Result<()> {
        let header = match codec {
            Codec::Vp8 => {
                let Some((width, height)) = codec::vp8_size(keyframe) else { return Ok(()) };
                self.summary.width = Some(width);
                self.summary.height = Some(height);
                TrackHeader { codec_id: "V_VP8", codec_private: None, kind: TrackKind::Video { width, height }, name: self.title.clone(), codec_delay_ns: None }
            }
            Codec::H264 => {
                let nals = codec::avc_nals(keyframe);
                let sps = nals.iter().find(|n| codec::nal_type(n) == 7);
                let pps = nals.iter().find(|n| codec::nal_type(n) == 8);
                let (Some(sps), Some(pps)) = (sps, pps) else { return Ok(()) };
                let Some((width, height)) = codec::h264_sps_size(sps) else { return Ok(()) };
                self.summary.width = Some(width);
                self.summary.height = Some(height);
                TrackHeader { codec_id: "V_MPEG4/ISO/AVC", codec_private: codec::avcc(sps, pps), kind: TrackKind::Video { width, height }, name: self.title.clone(), codec_delay_ns: None }
            }
            Codec::Opus => TrackHeader {
                codec_id: "A_OPUS",
                codec_private: Some(opus_head(2, OPUS_PRE_SKIP)),
                kind: TrackKind::Audio { sampling_frequency: 48_000.0, channels: 2 },
                name: self.title.clone(),
                codec_delay_ns: Some(u64::from(OPUS_PRE_SKIP) * 1_000_000_000 / 48_000),
            },
        };
        let file = File::create(&self.path)?;
        self.writer = Some(MkvWriter::new(BufWriter::new(file), &header, &self.title)?);
        Ok(())
    }

    /// Gives up on any gaps older than the reorder wait (called periodically when packets stop).
    pub fn tick(&mut self, now: Instant, at_ms: i64, clock: &mut Clock<'_>) -> std::io::Result<()> {
        let Some(codec) = self.codec else { return Ok(()) };
        let preferred = self.preferred_layer(now);
        let layers: Vec<u8> = self.layers.keys().copied().collect();
        for layer in layers {
            let frames = self.layers.get_mut(&layer).map(|l| l.release(codec, now)).unwrap_or_default();
            for (ts, data, broken) in frames {
                self.frame(codec, layer, preferred, ts, data, broken, at_ms, clock)?;
            }
        }
        Ok(())
    }

    pub fn publisher(&self) -> &str {
        &self.summary.publisher
    }

    /// Closes the file and reports.
    pub fn finish(mut self) -> TrackSummary {
        self.summary.lost_packets = self.layers.values().map(|l| l.lost).sum();
        if let Some(w) = self.writer.take() {
            // The last frame lasts as long as a typical frame: 20 ms of audio, one video frame.
            let frame_ms = if self.codec == Some(Codec::Opus) { 20 } else { 33 };
            match w.finish(self.summary.end_ms + frame_ms) {
                Ok(mut out) => {
                    let _ = std::io::Write::flush(&mut out);
                }
                Err(e) => self.summary.problem = Some(format!("writing the file failed: {e}")),
            }
            match crate::hash::digest_file(&self.path) {
                Ok(d) => {
                    self.summary.sha256 = Some(d.sha256);
                    self.summary.sm3 = Some(d.sm3);
                    self.summary.bytes = d.bytes;
                }
                Err(e) => self.summary.problem = Some(format!("hashing the file failed: {e}")),
            }
        } else if self.summary.problem.is_none() {
            self.summary.problem = Some(if self.summary.packets == 0 { "no packets".into() } else { "no decodable keyframe arrived".into() });
        }
        self.summary
    }
}
