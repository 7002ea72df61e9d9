//! Downlink bandwidth per subscriber, and which simulcast layer of each video it can afford.
//!
//! Each subscriber's peer connection runs rtc's send-side congestion controller (GCC over the
//! transport-wide feedback the browser returns, no pacer: the SFU forwards as packets come). The
//! estimate is shared with the core through [`DownlinkEstimate`]. Every allocation round the core
//! gives each subscriber's videos the highest layers (up to what each shows) whose measured
//! bitrates fit in the estimate. GCC cannot see more bandwidth than it is offered, so a subscriber
//! held below what it wants is offered one layer more now and then (a trial with the real media,
//! backing off after each failure) instead of padding probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};

use crate::core::LAYERS;

/// The estimate starts high: until feedback says otherwise a subscriber gets what it asks for,
/// and GCC clamps it to 1.5× what actually flows once reports arrive.
const INITIAL_BPS: f64 = 8_000_000.0;
const MIN_BPS: f64 = 100_000.0;
const MAX_BPS: f64 = 50_000_000.0;
/// The share of the estimate the allocation spends (the rest absorbs retransmissions and noise).
const HEADROOM: f64 = 0.9;
/// Bitrates assumed for layers that are not flowing (so not measured): a browser's defaults.
const ASSUMED_BPS: [u64; LAYERS] = [150_000, 500_000, 1_500_000];
/// The first trial comes this long after a subscriber was limited; failures double it.
const FIRST_TRIAL_AFTER: Duration = Duration::from_secs(6);
const MAX_TRIAL_BACKOFF: Duration = Duration::from_secs(60);
/// How long a trial layer is given to show that the link carries it.
const TRIAL_LENGTH: Duration = Duration::from_secs(4);

/// A subscriber's downlink estimate, written by its congestion controller.
#[derive(Debug, Default)]
pub struct DownlinkEstimate {
    bps: AtomicU64,
    reports: AtomicU64,
}

impl DownlinkEstimate {
    /// Bits per second, once feedback has arrived.
    pub fn get(&self) -> Option<u64> {
        (self.reports.load(Ordering::Relaxed) > 0).then(|| self.bps.load(Ordering::Relaxed))
    }
}

/// GCC, publishing its estimate for the core.
pub struct SharedGcc {
    gcc: Gcc,
    out: Arc<DownlinkEstimate>,
}

impl SharedGcc {
    pub fn new(out: Arc<DownlinkEstimate>) -> SharedGcc {
        SharedGcc { gcc: Gcc::new(INITIAL_BPS, MIN_BPS, MAX_BPS), out }
    }

    fn publish(&self) {
        self.out.bps.store(self.gcc.target_bitrate() as u64, Ordering::Relaxed);
    }
}

impl BandwidthEstimator for SharedGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        if !reports.is_empty() {
            self.out.reports.fetch_add(1, Ordering::Relaxed);
        }
        self.publish();
    }

    fn target_bitrate(&self) -> f64 {
        self.gcc.target_bitrate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
        self.publish();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Bytes over the last full second, per stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    bps: u64,
}

impl RateMeter {
    pub fn add(&mut self, now: Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            self.bps = (self.bytes * 8 * 1000) / (elapsed.as_millis() as u64).max(1);
            self.bytes = 0;
            self.window_start = Some(now);
        }
        self.bytes += bytes as u64;
    }

    /// The last full window's rate; `None` before one completed or after the stream stopped.
    pub fn bps(&self, now: Instant) -> Option<u64> {
        let start = self.window_start?;
        (self.bps > 0 && now.duration_since(start) < Duration::from_secs(2)).then_some(self.bps)
    }
}

/// One video a subscriber receives, as the allocation sees it.
#[derive(Debug, Clone, Copy)]
pub struct VideoDemand {
    /// The highest layer it wants (the size it is shown at).
    pub preferred: u8,
    /// Per layer: its bitrate (measured, or assumed when not flowing).
    pub rates: [u64; LAYERS],
}

/// The layer cap per video within `budget` bits per second: everyone starts at the lowest layer,
/// then layers are raised one step at a time, round-robin, while the total fits.
pub fn allocate(budget: u64, videos: &[VideoDemand]) -> Vec<u8> {
    let mut caps = vec![0u8; videos.len()];
    let mut spent: u64 = videos.iter().map(|v| v.rates[0]).sum();
    loop {
        let mut raised = false;
        for (i, v) in videos.iter().enumerate() {
            let next = caps[i] + 1;
            if next > v.preferred || usize::from(next) >= LAYERS {
                continue;
            }
            let extra = v.rates[usize::from(next)].saturating_sub(v.rates[usize::from(caps[i])]);
            if spent + extra <= budget {
                spent += extra;
                caps[i] = next;
                raised = true;
            }
        }
        if !raised {
            return caps;
        }
    }
}

/// The layer rates of a track for the allocation: measured where flowing, else assumed.
pub fn layer_rates(now: Instant, meters: &[RateMeter; LAYERS]) -> [u64; LAYERS] {
    let mut rates = ASSUMED_BPS;
    for (l, m) in meters.iter().enumerate() {
        if let Some(bps) = m.bps(now) {
            rates[l] = bps;
        }
    }
    // A higher layer never costs less than a lower one in the allocation's arithmetic.
    for l in 1..LAYERS {
        rates[l] = rates[l].max(rates[l - 1]);
    }
    rates
}

/// Per subscriber: the trial state.
#[derive(Debug)]
pub struct SubscriberBwe {
    pub estimate: Arc<DownlinkEstimate>,
    /// When the next trial may start (set while the subscriber is limited).
    next_trial: Option<Instant>,
    backoff: Duration,
    /// The video (index in the allocation's order) given one layer more, and until when.
    trial: Option<(usize, Instant)>,
}

impl SubscriberBwe {
    pub fn new(estimate: Arc<DownlinkEstimate>) -> SubscriberBwe {
        SubscriberBwe { estimate, next_trial: None, backoff: FIRST_TRIAL_AFTER, trial: None }
    }

    /// The layer cap per video now; `None` when no feedback has arrived yet (no limit).
    /// `other_bps` is what the subscriber receives besides these videos (audio).
    pub fn caps(&mut self, now: Instant, other_bps: u64, videos: &[VideoDemand]) -> Option<Vec<u8>> {
        let estimate = self.estimate.get()?;
        let budget = ((estimate as f64 * HEADROOM) as u64).saturating_sub(other_bps);
        let mut caps = allocate(budget, videos);
        let limited: Vec<usize> = (0..videos.len()).filter(|&i| caps[i] < videos[i].preferred.min((LAYERS - 1) as u8)).collect();
        if let Some((i, until)) = self.trial {
            if now < until && i < caps.len() {
                caps[i] = (caps[i] + 1).min(videos[i].preferred);
                return Some(caps);
            }
            // The trial is over: if the link carried it, the estimate now covers it and the
            // allocation keeps it; if not, wait longer before the next one.
            self.trial = None;
            if limited.contains(&i) {
                self.backoff = (self.backoff * 2).min(MAX_TRIAL_BACKOFF);
            } else {
                self.backoff = FIRST_TRIAL_AFTER;
            }
            self.next_trial = Some(now + self.backoff);
        }
        if limited.is_empty() {
            self.next_trial = None;
            self.backoff = FIRST_TRIAL_AFTER;
            return Some(caps);
        }
        let next = *self.next_trial.get_or_insert(now + self.backoff);
        if now >= next {
            // Offer the most starved video one layer more.
            if let Some(&i) = limited.iter().min_by_key(|&&i| caps[i]) {
                self.trial = Some((i, now + TRIAL_LENGTH));
                caps[i] += 1;
            }
        }
        Some(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [u64; LAYERS] = [150_000, 500_000, 1_500_000];

    fn video(preferred: u8) -> VideoDemand {
        VideoDemand { preferred, rates: RATES }
    }

    #[test]
    fn allocation_fits_the_budget_fairly() {
        assert_eq!(allocate(10_000_000, &[video(2), video(2)]), vec![2, 2]);
        // 2 Mbit/s: both to h (1.0M), then f for one needs +1.0M → 2.0M fits.
        assert_eq!(allocate(2_000_000, &[video(2), video(2)]), vec![2, 1]);
        assert_eq!(allocate(1_000_000, &[video(2), video(2)]), vec![1, 1]);
        // Not enough for both at h: the first in order gets it.
        assert_eq!(allocate(900_000, &[video(2), video(2)]), vec![1, 0]);
        assert_eq!(allocate(400_000, &[video(2), video(2)]), vec![0, 0]);
        // Nobody is raised past what it shows.
        assert_eq!(allocate(10_000_000, &[video(0), video(1)]), vec![0, 1]);
        // Too little for even the lowest layers: the lowest all the same.
        assert_eq!(allocate(0, &[video(2)]), vec![0]);
    }

    #[test]
    fn rates_fill_in_unmeasured_layers_monotonically() {
        let now = Instant::now();
        let mut meters = [RateMeter::default(); LAYERS];
        meters[0].add(now, 10_000);
        meters[0].add(now + Duration::from_millis(1000), 10_000);
        meters[2].add(now, 1);
        let rates = layer_rates(now + Duration::from_millis(1000), &meters);
        assert_eq!(rates[0], 80_000);
        assert_eq!(rates[1], ASSUMED_BPS[1]);
        assert_eq!(rates[2], ASSUMED_BPS[2]);
    }

    #[test]
    fn a_limited_subscriber_gets_trials_with_backoff() {
        let estimate = Arc::new(DownlinkEstimate::default());
        let mut bwe = SubscriberBwe::new(estimate.clone());
        let t0 = Instant::now();
        assert_eq!(bwe.caps(t0, 0, &[video(2)]), None, "no feedback yet: no limit");
        estimate.reports.store(1, Ordering::Relaxed);
        estimate.bps.store(400_000, Ordering::Relaxed);
        assert_eq!(bwe.caps(t0, 0, &[video(2)]), Some(vec![0]));
        // The first trial after 6 s: one layer up for 4 s.
        assert_eq!(bwe.caps(t0 + Duration::from_secs(5), 0, &[video(2)]), Some(vec![0]));
        assert_eq!(bwe.caps(t0 + Duration::from_secs(6), 0, &[video(2)]), Some(vec![1]));
        assert_eq!(bwe.caps(t0 + Duration::from_secs(9), 0, &[video(2)]), Some(vec![1]));
        // The estimate did not grow: back down, next trial 12 s later.
        assert_eq!(bwe.caps(t0 + Duration::from_secs(10), 0, &[video(2)]), Some(vec![0]));
        assert_eq!(bwe.caps(t0 + Duration::from_secs(21), 0, &[video(2)]), Some(vec![0]));
        assert_eq!(bwe.caps(t0 + Duration::from_secs(22), 0, &[video(2)]), Some(vec![1]));
        // This time the link carries it and grows: the allocation keeps h, then f fits too.
        estimate.bps.store(3_000_000, Ordering::Relaxed);
        assert_eq!(bwe.caps(t0 + Duration::from_secs(26), 0, &[video(2)]), Some(vec![2]));
        // Audio counts against the budget.
        estimate.bps.store(1_000_000, Ordering::Relaxed);
        assert_eq!(bwe.caps(t0 + Duration::from_secs(27), 400_000, &[video(2)]), Some(vec![1]));
    }
}
