//! What a subscriber measures on each track it receives: packets and bytes, loss from the
//! sequence numbers, interarrival jitter (RFC 3550 §6.4.1), integrity and one-way delay from the
//! payload trailer, the time to the first video key frame, and the simulcast layer (the picture
//! size in the VP8 key frames).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::payload::{self, Check};
use crate::participant::Stats;

#[derive(Debug, Default, Clone)]
pub struct TrackStats {
    /// The identity of the participant who published it (when signaling said so).
    pub publisher: String,
    pub video: bool,
    pub packets: u64,
    pub bytes: u64,
    pub corrupt: u64,
    /// Sum and maximum of one-way delays in µs.
    pub delay_sum_us: u64,
    pub delay_max_us: u64,
    pub first_at: Option<Instant>,
    pub first_keyframe_at: Option<Instant>,
    pub last_at: Option<Instant>,
    /// The stream's SSRC: a new one (the same track over a new connection) starts a new
    /// sequence space, whose expected count adds to the earlier ones'.
    ssrc: Option<u32>,
    expected_before: u64,
    /// Extended sequence numbers: the first and the highest seen.
    base_seq: Option<i64>,
    highest_seq: i64,
    /// RFC 3550 jitter in RTP clock units, and the previous packet's relative transit time.
    jitter: f64,
    last_transit: Option<f64>,
    /// Packets that arrived after a later one (retransmissions, reordering).
    pub late: u64,
    /// The picture size of the last key frame, and how often it changed (layer switches).
    pub frame_size: Option<(u16, u16)>,
    pub size_changes: u32,
}

impl TrackStats {
    pub fn expected(&self) -> u64 {
        self.expected_before + self.base_seq.map(|b| (self.highest_seq - b + 1).max(0) as u64).unwrap_or(0)
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.packets)
    }

    pub fn jitter_ms(&self) -> f64 {
        let clock = if self.video { 90.0 } else { 48.0 };
        self.jitter / clock
    }

    fn record(&mut self, now: Instant, epoch: Instant, ssrc: u32, seq: u16, timestamp: u32, data: &[u8]) {
        if self.ssrc != Some(ssrc) {
            self.expected_before = self.expected();
            self.base_seq = None;
            self.last_transit = None;
            self.ssrc = Some(ssrc);
        }
        self.packets += 1;
        self.bytes += data.len() as u64;
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
        match payload::check(data) {
            Check::Intact(d) => {
                self.delay_sum_us += d;
                self.delay_max_us = self.delay_max_us.max(d);
            }
            Check::Corrupt => self.corrupt += 1,
        }
        // Extend the 16-bit sequence number next to the highest seen.
        let ext = match self.base_seq {
            None => {
                self.base_seq = Some(i64::from(seq));
                self.highest_seq = i64::from(seq);
                i64::from(seq)
            }
            Some(_) => {
                let ext = self.highest_seq + i64::from(seq.wrapping_sub(self.highest_seq as u16) as i16);
                if ext > self.highest_seq {
                    self.highest_seq = ext;
                } else {
                    self.late += 1;
                }
                ext
            }
        };
        if ext >= self.highest_seq {
            let clock = if self.video { 90_000.0 } else { 48_000.0 };
            let transit = now.duration_since(epoch).as_secs_f64() * clock - f64::from(timestamp);
            if let Some(last) = self.last_transit {
                let d = (transit - last).abs();
                // A timestamp rebase (the SFU switching source) is not network jitter.
                if d < clock {
                    self.jitter += (d - self.jitter) / 16.0;
                }
            }
            self.last_transit = Some(transit);
        }
        if self.video
            && let Some(size) = jiefen_media::keyframe::vp8_keyframe_size(data)
        {
            self.first_keyframe_at.get_or_insert(now);
            if self.frame_size.is_some_and(|s| s != size) {
                self.size_changes += 1;
            }
            self.frame_size = Some(size);
        }
    }
}

/// Reads a received track until it ends, recording into `stats.tracks[key]`.
pub fn spawn(track: Arc<dyn TrackRemote>, stats: Arc<Mutex<Stats>>, publishers: Arc<Mutex<HashMap<String, String>>>) {
    tokio::spawn(async move {
        let id = track.track_id().await;
        let video = track.kind().await == RtpCodecKind::Video;
        let epoch = Instant::now();
        while let Some(event) = track.poll().await {
            match event {
                TrackRemoteEvent::OnRtpPacket(p) => {
                    if p.payload.is_empty() {
                        continue; // padding
                    }
                    let Ok(mut s) = stats.lock() else { return };
                    let t = s.tracks.entry(id.clone()).or_default();
                    // Who published it, until signaling has said (then it stays).
                    if t.publisher.is_empty() || t.publisher == id {
                        t.publisher = publishers.lock().ok().and_then(|m| m.get(&id).cloned()).unwrap_or_else(|| id.clone());
                    }
                    t.video = video;
                    t.record(Instant::now(), epoch, p.header.ssrc, p.header.sequence_number, p.header.timestamp, &p.payload);
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn loss_reordering_and_wrap() {
        let epoch = Instant::now();
        let mut t = TrackStats { video: false, ..TrackStats::default() };
        let body = payload::stamp(b"opus", 0);
        for (i, seq) in [65533u16, 65534, 0, 65535, 2, 3].into_iter().enumerate() {
            t.record(epoch + Duration::from_millis(20 * i as u64), epoch, 7, seq, 960 * i as u32, &body);
        }
        // 65533..=3 is 7 packets; 1 never came, 65535 came late.
        assert_eq!((t.expected(), t.packets, t.lost(), t.late, t.corrupt), (7, 6, 1, 1, 0));
        assert!(t.jitter_ms() < 1.0, "{}", t.jitter_ms());
        // The same track over a new connection: a new SSRC and sequence space, no phantom loss.
        for seq in [30_000u16, 30_001, 30_002] {
            t.record(epoch, epoch, 8, seq, 0, &body);
        }
        assert_eq!((t.expected(), t.packets, t.lost()), (10, 9, 1));
    }
}
