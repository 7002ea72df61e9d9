//! A small Matroska/WebM writer: EBML header, a Segment of unknown size, Info, one track, and
//! Clusters of SimpleBlocks, each cluster written whole and flushed. The only thing patched
//! afterwards is an 11-byte Void in Info that becomes the Duration on a clean finish, so a file
//! cut off by a crash is a valid (duration-less) stream up to its last complete cluster.

use std::io::{Seek, SeekFrom, Write};

/// Element ids used here (Matroska specification).
mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TITLE: u32 = 0x7BA9;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const NAME: u32 = 0x536E;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
}

fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().position(|b| *b != 0).unwrap_or(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// A data size as an EBML variable-length integer (always 8 bytes: simple and valid).
fn put_size(out: &mut Vec<u8>, size: u64) {
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

/// The reserved "unknown size" value, for the Segment that a crash may leave unfinished.
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

fn element(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn uint(out: &mut Vec<u8>, id: u32, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    element(out, id, &bytes[skip..]);
}

fn float(out: &mut Vec<u8>, id: u32, v: f64) {
    element(out, id, &v.to_be_bytes());
}

fn text(out: &mut Vec<u8>, id: u32, v: &str) {
    element(out, id, v.as_bytes());
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrackKind {
    Video { width: u32, height: u32 },
    Audio { sampling_frequency: f64, channels: u8 },
}

#[derive(Debug, Clone)]
pub struct TrackHeader {
    /// `V_VP8`, `V_VP9`, `V_MPEG4/ISO/AVC`, `A_OPUS`.
    pub codec_id: &'static str,
    pub codec_private: Option<Vec<u8>>,
    pub kind: TrackKind,
    pub name: String,
    /// Opus: the decoder delay in ns (pre-skip); written as CodecDelay.
    pub codec_delay_ns: Option<u64>,
}

/// WebM for VP8/VP9/Opus, Matroska otherwise.
pub fn doc_type(codec_id: &str) -> &'static str {
    if matches!(codec_id, "V_VP8" | "V_VP9" | "A_OPUS") { "webm" } else { "matroska" }
}

/// A cluster may span at most this long: block timestamps are 16-bit offsets in ms.
pub const MAX_CLUSTER_MS: i64 = 5_000;

pub struct MkvWriter<W: Write + Seek> {
    out: W,
    /// Where the Void placeholder for the Duration starts.
    duration_at: u64,
    cluster: Vec<u8>,
    cluster_start: Option<i64>,
    last_ms: i64,
    video: bool,
    pub bytes_written: u64,
}

impl<W: Write + Seek> MkvWriter<W> {
    /// Writes the header (EBML, Segment start, Info, Tracks) and flushes it.
    pub fn new(mut out: W, track: &TrackHeader, title: &str) -> std::io::Result<MkvWriter<W>> {
        let mut buf = Vec::new();
        let mut ebml = Vec::new();
        uint(&mut ebml, id::EBML_VERSION, 1);
        uint(&mut ebml, id::EBML_READ_VERSION, 1);
        uint(&mut ebml, id::EBML_MAX_ID_LENGTH, 4);
        uint(&mut ebml, id::EBML_MAX_SIZE_LENGTH, 8);
        text(&mut ebml, id::DOC_TYPE, doc_type(track.codec_id));
        uint(&mut ebml, id::DOC_TYPE_VERSION, 4);
        uint(&mut ebml, id::DOC_TYPE_READ_VERSION, 2);
        element(&mut buf, id::EBML, &ebml);
        put_id(&mut buf, id::SEGMENT);
        buf.extend_from_slice(&UNKNOWN_SIZE);
        let mut info = Vec::new();
        uint(&mut info, id::TIMESTAMP_SCALE, 1_000_000);
        text(&mut info, id::MUXING_APP, "jiefen-recorder");
        text(&mut info, id::WRITING_APP, "jiefen-recorder");
        text(&mut info, id::TITLE, title);
        // Room for the Duration (2-byte id, 1-byte size, 8-byte float) filled in at the end.
        let void_in_info = info.len();
        info.extend_from_slice(&[0xEC, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let info_start = buf.len();
        element(&mut buf, id::INFO, &info);
        let duration_at = (info_start + 4 + 8 + void_in_info) as u64;
        let mut entry = Vec::new();
        uint(&mut entry, id::TRACK_NUMBER, 1);
        uint(&mut entry, id::TRACK_UID, 1);
        let video = matches!(track.kind, TrackKind::Video { .. });
        uint(&mut entry, id::TRACK_TYPE, if video { 1 } else { 2 });
        text(&mut entry, id::CODEC_ID, track.codec_id);
        text(&mut entry, id::NAME, &track.name);
        if let Some(p) = &track.codec_private {
            element(&mut entry, id::CODEC_PRIVATE, p);
        }
        if let Some(d) = track.codec_delay_ns {
            uint(&mut entry, id::CODEC_DELAY, d);
            uint(&mut entry, id::SEEK_PRE_ROLL, 80_000_000);
        }
        match &track.kind {
            TrackKind::Video { width, height } => {
                let mut v = Vec::new();
                uint(&mut v, id::PIXEL_WIDTH, u64::from(*width));
                uint(&mut v, id::PIXEL_HEIGHT, u64::from(*height));
                element(&mut entry, id::VIDEO, &v);
            }
            TrackKind::Audio { sampling_frequency, channels } => {
                let mut a = Vec::new();
                float(&mut a, id::SAMPLING_FREQUENCY, *sampling_frequency);
                uint(&mut a, id::CHANNELS, u64::from(*channels));
                element(&mut entry, id::AUDIO, &a);
            }
        }
        let mut tracks = Vec::new();
        element(&mut tracks, id::TRACK_ENTRY, &entry);
        element(&mut buf, id::TRACKS, &tracks);
        out.write_all(&buf)?;
        out.flush()?;
        let start = out.stream_position()?.saturating_sub(buf.len() as u64);
        Ok(MkvWriter { out, duration_at: start + duration_at, cluster: Vec::new(), cluster_start: None, last_ms: i64::MIN, video, bytes_written: buf.len() as u64 })
    }

    /// Adds one frame at `ms` (milliseconds from the file's zero). Timestamps only go forward:
    /// a frame that would not is moved to just after the last one written (players and muxers
    /// refuse equal or decreasing timestamps).
    pub fn write_frame(&mut self, ms: i64, keyframe: bool, data: &[u8]) -> std::io::Result<()> {
        let ms = if self.last_ms == i64::MIN { ms.max(0) } else { ms.max(self.last_ms + 1) };
        // A new cluster at each video keyframe (after a second) or when offsets would overflow.
        let start_new = match self.cluster_start {
            None => true,
            Some(start) => ms - start >= MAX_CLUSTER_MS || (self.video && keyframe && ms - start >= 1_000),
        };
        if start_new {
            self.flush_cluster()?;
            self.cluster_start = Some(ms);
        }
        let start = self.cluster_start.unwrap_or(ms);
        let rel = i16::try_from(ms - start).unwrap_or(i16::MAX);
        let mut block = Vec::with_capacity(data.len() + 4);
        block.push(0x81); // track number 1 as a vint
        block.extend_from_slice(&rel.to_be_bytes());
        block.push(if keyframe || !self.video { 0x80 } else { 0x00 });
        block.extend_from_slice(data);
        element(&mut self.cluster, id::SIMPLE_BLOCK, &block);
        self.last_ms = ms;
        Ok(())
    }

    /// Writes the open cluster (with its size known) and flushes it to the file.
    pub fn flush_cluster(&mut self) -> std::io::Result<()> {
        let Some(start) = self.cluster_start.take() else { return Ok(()) };
        if self.cluster.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(self.cluster.len() + 12);
        uint(&mut body, id::TIMESTAMP, u64::try_from(start).unwrap_or(0));
        body.append(&mut self.cluster);
        let mut buf = Vec::with_capacity(body.len() + 12);
        element(&mut buf, id::CLUSTER, &body);
        self.out.write_all(&buf)?;
        self.out.flush()?;
        self.bytes_written += buf.len() as u64;
        Ok(())
    }

    /// Writes the last cluster and turns the placeholder into the Duration (`end_ms`: the end
    /// of the last frame).
    pub fn finish(mut self, end_ms: i64) -> std::io::Result<W> {
        self.flush_cluster()?;
        let end = self.out.stream_position()?;
        // The id, a 1-byte size (8), the float: exactly the 11 bytes of the placeholder.
        let patch = [&[0x44, 0x89, 0x88][..], &(end_ms.max(0) as f64).to_be_bytes()[..]].concat();
        debug_assert_eq!(patch.len(), 11);
        self.out.seek(SeekFrom::Start(self.duration_at))?;
        self.out.write_all(&patch)?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        Ok(self.out)
    }

    pub fn last_ms(&self) -> Option<i64> {
        (self.last_ms != i64::MIN).then_some(self.last_ms)
    }
}

/// The 19-byte `OpusHead` CodecPrivate (RFC 7845): version 1, channels, pre-skip, 48 kHz, no gain, family 0.
pub fn opus_head(channels: u8, pre_skip: u16) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(channels);
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_sizes_encode_as_the_spec_says() {
        let mut out = Vec::new();
        uint(&mut out, id::TIMESTAMP_SCALE, 1_000_000);
        assert_eq!(out, [0x2A, 0xD7, 0xB1, 0x01, 0, 0, 0, 0, 0, 0, 0x03, 0x0F, 0x42, 0x40]);
        assert_eq!(opus_head(2, 0).len(), 19);
    }

    #[test]
    fn clusters_split_at_keyframes_and_long_spans() {
        let header = TrackHeader { codec_id: "V_VP8", codec_private: None, kind: TrackKind::Video { width: 64, height: 48 }, name: "cam".into(), codec_delay_ns: None };
        let mut w = MkvWriter::new(std::io::Cursor::new(Vec::new()), &header, "t").expect("header");
        for i in 0..300 {
            w.write_frame(i * 33, i % 60 == 0, &[1, 2, 3]).expect("frame");
        }
        let out = w.finish(300 * 33).expect("finish").into_inner();
        let d = out.windows(3).position(|w| w == [0x44, 0x89, 0x88]).expect("duration written");
        assert_eq!(f64::from_be_bytes(out[d + 3..d + 11].try_into().expect("8 bytes")), 9900.0);
        let clusters = out.windows(4).filter(|w| *w == [0x1F, 0x43, 0xB6, 0x75]).count();
        assert_eq!(clusters, 5, "a cluster per keyframe every ~2 s over 10 s");
    }
}
