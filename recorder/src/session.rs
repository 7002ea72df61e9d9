//! A room's recording: takes the tap's packets, keeps one `TrackRecorder` per published track,
//! and writes the manifest when the tap closes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use jiefen_media::{TapItem, TapPacket, TapSenderReport};
use serde::{Deserialize, Serialize};

use crate::track::{Clock, TrackRecorder, TrackSummary};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub room: String,
    /// RFC 3339.
    pub started_at: String,
    pub ended_at: String,
    pub duration_ms: i64,
    pub tracks: Vec<TrackSummary>,
    /// Packets the media plane dropped because the recorder fell behind (from the tap).
    pub tap_overflow: u64,
}

pub const MANIFEST_FILE: &str = "manifest.json";

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // Civil-from-days (H. Hinnant), to avoid a date dependency for one timestamp.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub struct RoomRecording {
    room: String,
    dir: PathBuf,
    started: Instant,
    started_wall: SystemTime,
    tracks: HashMap<String, TrackRecorder>,
    problems: Vec<String>,
    reports: HashMap<u32, TapSenderReport>,
    publisher_offsets: HashMap<String, Option<i64>>,
}

fn safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).take(80).collect()
}

impl RoomRecording {
    /// Starts a recording into `dir` (created).
    pub fn new(room: &str, dir: &Path) -> std::io::Result<RoomRecording> {
        std::fs::create_dir_all(dir)?;
        Ok(RoomRecording { room: room.into(), dir: dir.to_path_buf(), started: Instant::now(), started_wall: SystemTime::now(), tracks: HashMap::new(), problems: Vec::new(), reports: HashMap::new(), publisher_offsets: HashMap::new() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn at_ms(&self, t: Instant) -> i64 {
        i64::try_from(t.saturating_duration_since(self.started).as_millis()).unwrap_or(i64::MAX)
    }

    pub fn push_item(&mut self, item: TapItem) -> std::io::Result<()> {
        match item {
            TapItem::Packet(p) => self.push(p),
            TapItem::SenderReport(sr) => {
                self.sender_report(sr);
                Ok(())
            }
        }
    }

    /// A publisher stream's RTCP sender report: from then on its RTP time maps to its wallclock.
    pub fn sender_report(&mut self, sr: TapSenderReport) {
        self.reports.insert(sr.ssrc, sr);
    }

    pub fn push(&mut self, p: TapPacket) -> std::io::Result<()> {
        let at = self.at_ms(p.received_at);
        let key = p.track.to_string();
        let n = self.tracks.len();
        let dir = self.dir.clone();
        let track = self.tracks.entry(key.clone()).or_insert_with(|| {
            let source = format!("{:?}", p.source).to_lowercase();
            let ext = if p.mime_type.eq_ignore_ascii_case("video/h264") { "mkv" } else { "webm" };
            let path = dir.join(format!("{:02}-{}-{}.{ext}", n + 1, safe(&p.publisher.to_string()), safe(&source)));
            TrackRecorder::new(path, &p.publisher.to_string(), &key, &source, &p.mime_type, p.clock_rate)
        });
        let offset = self.publisher_offsets.entry(p.publisher.to_string()).or_insert(None);
        let mut clock = Clock { reports: &self.reports, publisher_offset: offset };
        track.push(p.layer, p.packet, p.received_at, at, &mut clock)
    }

    /// Lets gaps time out when packets stop arriving.
    pub fn tick(&mut self, now: Instant) -> std::io::Result<()> {
        let at = self.at_ms(now);
        for t in self.tracks.values_mut() {
            let offset = self.publisher_offsets.entry(t.publisher().to_string()).or_insert(None);
            let mut clock = Clock { reports: &self.reports, publisher_offset: offset };
            t.tick(now, at, &mut clock)?;
        }
        Ok(())
    }

    pub fn note_problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Closes every file and writes `manifest.json`; returns the manifest and its SHA-256 (its
    /// SM3 is `hash::sm3` of the same file).
    pub fn finish(self, tap_overflow: u64) -> std::io::Result<(Manifest, String)> {
        let ended = SystemTime::now();
        let mut tracks: Vec<TrackSummary> = self.tracks.into_values().map(|t| t.finish()).collect();
        tracks.sort_by(|a, b| a.file.cmp(&b.file));
        let manifest = Manifest {
            room: self.room,
            started_at: rfc3339(self.started_wall),
            ended_at: rfc3339(ended),
            duration_ms: i64::try_from(ended.duration_since(self.started_wall).unwrap_or_default().as_millis()).unwrap_or(0),
            tracks,
            tap_overflow,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        std::fs::write(self.dir.join(MANIFEST_FILE), &bytes)?;
        Ok((manifest, crate::hash::sha256(&bytes)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::rfc3339(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000)), "2026-11-30T00:53:20Z");
    }
}
