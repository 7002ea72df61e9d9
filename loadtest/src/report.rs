//! The load test's report: what the participants experienced and what the server spent, as a
//! table for people, JSON for machines, per-second samples for the chart, and thresholds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::participant::Participant;
use crate::procstat::ProcSample;
use crate::receive::TrackStats;

/// A stream counts as received when a packet arrived this recently at the end of the run.
const LIVE_WITHIN: Duration = Duration::from_secs(3);

/// What one or more participants received.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub bytes: u64,
    pub packets: u64,
    pub lost: u64,
}

impl Totals {
    pub fn of(p: &Participant) -> Totals {
        p.tracks().iter().fold(Totals::default(), |a, t| Totals { bytes: a.bytes + t.bytes, packets: a.packets + t.packets, lost: a.lost + t.lost() })
    }

    pub fn add(&mut self, other: Totals) {
        self.bytes += other.bytes;
        self.packets += other.packets;
        self.lost += other.lost;
    }
}

/// Totals over all participants at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t: f64,
    pub bytes_received: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub server_cpu_seconds: Option<f64>,
    pub server_rss_bytes: Option<u64>,
}

impl Sample {
    /// Totals of `people` plus `departed` (what participants who left had received, so that the
    /// per-second series do not drop when someone leaves).
    pub fn take<'a>(t0: Instant, people: impl Iterator<Item = &'a Participant>, departed: Totals, server: Option<ProcSample>) -> Sample {
        let Totals { mut bytes, mut packets, mut lost } = departed;
        for p in people {
            let t = Totals::of(p);
            bytes += t.bytes;
            packets += t.packets;
            lost += t.lost;
        }
        Sample {
            t: t0.elapsed().as_secs_f64(),
            bytes_received: bytes,
            packets_received: packets,
            packets_lost: lost,
            server_cpu_seconds: server.map(|s| s.cpu.as_secs_f64()),
            server_rss_bytes: server.map(|s| s.rss),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub label: String,
    pub rooms: usize,
    pub publishers_per_room: usize,
    pub subscribers_per_room: usize,
    pub participants: usize,
    pub seconds: f64,
    pub streams_expected: u64,
    pub streams_receiving: u64,
    pub packets_received: u64,
    pub packets_expected: u64,
    pub packets_lost: u64,
    /// packets_received / packets_expected (by sequence numbers, per received stream).
    pub delivery: f64,
    pub corrupt: u64,
    pub nacks_sent: u64,
    pub late_packets: u64,
    pub keyframe_requests_answered: u64,
    /// Requests from the SFU to pause or resume simulcast layers nobody watches.
    pub layer_requests: u64,
    pub received_mbit_per_s: f64,
    pub jitter_ms_mean: f64,
    pub jitter_ms_max: f64,
    pub delay_ms_mean: f64,
    pub delay_ms_max: f64,
    /// Join (participant started) → first video key frame received, over participants with one.
    pub join_to_keyframe_ms: Vec<u64>,
    pub join_to_keyframe_ms_median: Option<u64>,
    pub join_to_keyframe_ms_p95: Option<u64>,
    /// Video streams by the picture size last received ("1280x720" → count).
    pub layers: BTreeMap<String, u64>,
    pub layer_switches: u64,
    pub joins: u64,
    pub errors: u64,
    /// A few of the errors participants met, for the reader.
    pub error_examples: Vec<String>,
    pub departed: u64,
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    /// Server CPU (% of one core) per forwarded video stream (with its audio).
    pub server_cpu_percent_per_video_stream: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    pub server_rss_bytes_after_warmup: Option<u64>,
    pub server_rss_per_participant_bytes: Option<u64>,
    /// The room data channel (`--data-rate`): messages sent, relayed messages received, and
    /// their one-way delay; refusals from the SFU.
    pub data_sent: u64,
    pub data_received: u64,
    pub data_refused: u64,
    pub data_delay_ms_mean: f64,
    pub data_delay_ms_max: f64,
    /// data_received / (data_sent × (participants per room − 1)).
    pub data_delivery: f64,
    pub samples: Vec<Sample>,
    #[serde(skip)]
    jitter_sum: f64,
    #[serde(skip)]
    jitter_n: u64,
    #[serde(skip)]
    delay_sum_us: u64,
    #[serde(skip)]
    bytes: u64,
    #[serde(skip)]
    data_delay_sum_us: u64,
}

pub struct Thresholds {
    pub min_delivery: Option<f64>,
    pub all_streams: bool,
    pub max_join: Option<Duration>,
    pub max_delay_ms: Option<f64>,
    pub no_corrupt: bool,
    pub min_data_delivery: Option<f64>,
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

impl Report {
    pub fn new(label: String) -> Report {
        Report { label, ..Report::default() }
    }

    fn add_tracks(&mut self, tracks: &[TrackStats]) {
        for t in tracks {
            self.packets_received += t.packets;
            self.packets_expected += t.expected();
            self.packets_lost += t.lost();
            self.corrupt += t.corrupt;
            self.late_packets += t.late;
            self.bytes += t.bytes;
            self.delay_sum_us += t.delay_sum_us;
            self.delay_ms_max = self.delay_ms_max.max(t.delay_max_us as f64 / 1000.0);
            if t.packets > 1 {
                self.jitter_sum += t.jitter_ms();
                self.jitter_n += 1;
                self.jitter_ms_max = self.jitter_ms_max.max(t.jitter_ms());
            }
            if let Some((w, h)) = t.frame_size {
                *self.layers.entry(format!("{w}x{h}")).or_default() += 1;
            }
            self.layer_switches += u64::from(t.size_changes);
        }
    }

    fn add_participant(&mut self, p: &Participant, spawned_at: Instant) {
        let tracks = p.tracks();
        if let Some(first) = tracks.iter().filter_map(|t| t.first_keyframe_at).min() {
            self.join_to_keyframe_ms.push(first.duration_since(spawned_at).as_millis() as u64);
        }
        if let Ok(s) = p.stats.lock() {
            self.nacks_sent += s.nacks_sent;
            self.data_sent += s.data_sent;
            self.data_received += s.data_received;
            self.data_refused += s.data_refused;
            self.data_delay_sum_us += s.data_delay_sum_us;
            self.data_delay_ms_max = self.data_delay_ms_max.max(s.data_delay_max_us as f64 / 1000.0);
            self.joins += u64::from(s.joins);
            self.errors += s.errors.len() as u64;
            for e in &s.errors {
                if self.error_examples.len() < 5 && !self.error_examples.contains(e) {
                    self.error_examples.push(e.clone());
                }
            }
        }
        self.keyframe_requests_answered += p.sent.keyframe_requests.load(std::sync::atomic::Ordering::Relaxed);
        self.layer_requests += p.sent.layer_requests.load(std::sync::atomic::Ordering::Relaxed);
        self.add_tracks(&tracks);
    }

    /// A participant still in its seat at the end, expected to receive `expected_streams`.
    pub fn add_seat(&mut self, p: &Participant, spawned_at: Instant, expected_streams: usize) {
        self.streams_expected += expected_streams as u64;
        // Streams still flowing at the end (not those of publishers who left during the run).
        let live = p.tracks().iter().filter(|t| t.last_at.is_some_and(|at| at.elapsed() < LIVE_WITHIN)).count();
        self.streams_receiving += live.min(expected_streams) as u64;
        self.add_participant(p, spawned_at);
    }

    /// A participant that left during the run (churn).
    pub fn add_departed(&mut self, p: &Participant, spawned_at: Instant) {
        self.departed += 1;
        self.add_participant(p, spawned_at);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &mut self,
        elapsed: Duration,
        rooms: usize,
        publishers: usize,
        subscribers: usize,
        participants: usize,
        before: Option<ProcSample>,
        after: Option<ProcSample>,
        rss_after_warmup: Option<u64>,
    ) {
        let secs = elapsed.as_secs_f64();
        self.seconds = secs;
        self.rooms = rooms;
        self.publishers_per_room = publishers;
        self.subscribers_per_room = subscribers;
        self.participants = participants;
        self.delivery = if self.packets_expected > 0 { self.packets_received as f64 / self.packets_expected as f64 } else { 0.0 };
        self.received_mbit_per_s = self.bytes as f64 * 8.0 / secs / 1e6;
        self.jitter_ms_mean = if self.jitter_n > 0 { self.jitter_sum / self.jitter_n as f64 } else { 0.0 };
        self.delay_ms_mean = if self.packets_received > 0 { self.delay_sum_us as f64 / self.packets_received as f64 / 1000.0 } else { 0.0 };
        let others = (publishers + subscribers).saturating_sub(1) as f64;
        self.data_delivery = if self.data_sent > 0 && others > 0.0 { self.data_received as f64 / (self.data_sent as f64 * others) } else { 0.0 };
        self.data_delay_ms_mean =
            if self.data_received > 0 { self.data_delay_sum_us as f64 / self.data_received as f64 / 1000.0 } else { 0.0 };
        self.join_to_keyframe_ms.sort_unstable();
        self.join_to_keyframe_ms_median = percentile(&self.join_to_keyframe_ms, 0.5);
        self.join_to_keyframe_ms_p95 = percentile(&self.join_to_keyframe_ms, 0.95);
        if let (Some(b), Some(a)) = (before, after) {
            let cpu = (a.cpu.saturating_sub(b.cpu)).as_secs_f64();
            let video_streams = (self.streams_expected / 2).max(1) as f64;
            self.server_cpu_seconds = Some(cpu);
            self.server_cpu_percent = Some(cpu / secs * 100.0);
            self.server_cpu_percent_per_video_stream = Some(cpu / secs * 100.0 / video_streams);
            self.server_rss_bytes = Some(a.rss);
            self.server_rss_per_participant_bytes = Some(a.rss / participants.max(1) as u64);
        }
        self.server_rss_bytes_after_warmup = rss_after_warmup;
    }

    pub fn table(&self) -> String {
        let mib = |b: u64| b as f64 / 1048576.0;
        let mut t = String::new();
        let mut row = |k: &str, v: String| t.push_str(&format!("  {k:<34} {v}\n"));
        row("target", self.label.clone());
        row("rooms × (publishers + subscribers)", format!("{} × ({} + {}), {} participants, {:.1} s", self.rooms, self.publishers_per_room, self.subscribers_per_room, self.participants, self.seconds));
        row("streams receiving", format!("{} of {}", self.streams_receiving, self.streams_expected));
        row("packets received", format!("{} of {} ({:.2}%), lost {}, late {}", self.packets_received, self.packets_expected, self.delivery * 100.0, self.packets_lost, self.late_packets));
        row("corrupt payloads", self.corrupt.to_string());
        row("NACKs sent / keyframe requests", format!("{} / {} answered by publishers", self.nacks_sent, self.keyframe_requests_answered));
        row("layer pause/resume requests", self.layer_requests.to_string());
        row("received", format!("{:.2} Mbit/s", self.received_mbit_per_s));
        row("jitter", format!("mean {:.2} ms, max {:.2} ms", self.jitter_ms_mean, self.jitter_ms_max));
        row("one-way delay", format!("mean {:.2} ms, max {:.1} ms", self.delay_ms_mean, self.delay_ms_max));
        if self.data_sent > 0 {
            row(
                "data channel messages",
                format!(
                    "{} sent, {} relayed copies received ({:.1}%), {} refused; delay mean {:.2} ms, max {:.1} ms",
                    self.data_sent,
                    self.data_received,
                    self.data_delivery * 100.0,
                    self.data_refused,
                    self.data_delay_ms_mean,
                    self.data_delay_ms_max
                ),
            );
        }
        if let (Some(m), Some(p)) = (self.join_to_keyframe_ms_median, self.join_to_keyframe_ms_p95) {
            row("join → first key frame", format!("median {m} ms, p95 {p} ms (n = {})", self.join_to_keyframe_ms.len()));
        }
        if !self.layers.is_empty() {
            let layers: Vec<String> = self.layers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            row("video layer received", format!("{} ({} switches)", layers.join(", "), self.layer_switches));
        }
        row("joins / left (churn) / errors", format!("{} / {} / {}", self.joins, self.departed, self.errors));
        for e in &self.error_examples {
            row("  error", e.clone());
        }
        if let (Some(cpu), Some(pct), Some(per), Some(rss)) = (self.server_cpu_seconds, self.server_cpu_percent, self.server_cpu_percent_per_video_stream, self.server_rss_bytes) {
            row("server CPU", format!("{cpu:.2} s = {pct:.1}% of one core"));
            row("server CPU per video stream", format!("{per:.3}% of a core"));
            row("server RSS", format!("{:.1} MiB ({:.2} MiB per participant)", mib(rss), mib(self.server_rss_per_participant_bytes.unwrap_or(0))));
            if let Some(w) = self.server_rss_bytes_after_warmup {
                row("server RSS after 5 s → end", format!("{:.1} → {:.1} MiB", mib(w), mib(rss)));
            }
        }
        t
    }

    /// What fell below the thresholds, as sentences.
    pub fn check(&self, th: &Thresholds) -> Vec<String> {
        let mut failed = Vec::new();
        if let Some(min) = th.min_delivery
            && self.delivery < min
        {
            failed.push(format!("delivery {:.4} below {min}", self.delivery));
        }
        if th.all_streams && self.streams_receiving < self.streams_expected {
            failed.push(format!("{} of {} streams received media", self.streams_receiving, self.streams_expected));
        }
        if let Some(max) = th.max_join {
            match self.join_to_keyframe_ms_median {
                Some(m) if Duration::from_millis(m) <= max => {}
                Some(m) => failed.push(format!("median join → key frame {m} ms above {} ms", max.as_millis())),
                None => failed.push("no participant received a video key frame".into()),
            }
        }
        if let Some(max) = th.max_delay_ms
            && self.delay_ms_mean > max
        {
            failed.push(format!("mean delay {:.2} ms above {max} ms", self.delay_ms_mean));
        }
        if th.no_corrupt && self.corrupt > 0 {
            failed.push(format!("{} corrupt payloads", self.corrupt));
        }
        if let Some(min) = th.min_data_delivery
            && self.data_delivery < min
        {
            failed.push(format!("data channel delivery {:.4} below {min}", self.data_delivery));
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_name_what_failed() {
        let r = Report { delivery: 0.9, streams_expected: 4, streams_receiving: 3, corrupt: 1, delay_ms_mean: 3.0, ..Report::default() };
        let failed = r.check(&Thresholds { min_delivery: Some(0.95), all_streams: true, max_join: Some(Duration::from_secs(1)), max_delay_ms: Some(2.0), no_corrupt: true, min_data_delivery: None });
        assert_eq!(failed.len(), 5, "{failed:?}");
        let ok = Report { delivery: 0.99, streams_expected: 4, streams_receiving: 4, join_to_keyframe_ms_median: Some(300), delay_ms_mean: 1.0, ..Report::default() };
        assert!(ok.check(&Thresholds { min_delivery: Some(0.95), all_streams: true, max_join: Some(Duration::from_secs(1)), max_delay_ms: Some(2.0), no_corrupt: true, min_data_delivery: None }).is_empty());
        assert_eq!(percentile(&[1, 2, 3, 4, 5], 0.5), Some(3));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
