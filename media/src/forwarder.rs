//! Per-subscription sequence-number and timestamp rewriting: the subscriber sees one continuous
//! stream even when the SFU deliberately skips packets (waiting for a keyframe, caucus, mute) or
//! switches to another simulcast layer, while genuine upstream loss stays visible as a gap so
//! that NACK can repair it.

/// The timestamp step assumed across a layer switch: one frame at 30 fps on the 90 kHz clock.
const SWITCH_TIMESTAMP_STEP: u32 = 3000;

#[derive(Debug, Default, Clone)]
pub struct Forwarder {
    started: bool,
    offset: u16,
    last_out: u16,
    /// Packets were skipped on purpose since the last forwarded one.
    skipped: bool,
    ts_offset: u32,
    last_out_ts: u32,
    /// The next packet comes from another source stream (a simulcast layer switch).
    rebase_ts: bool,
}

impl Forwarder {
    /// `base` is the first outgoing sequence number (random, per RFC 3550).
    pub fn new(base: u16) -> Forwarder {
        Forwarder { offset: base, last_out: base.wrapping_sub(1), ..Forwarder::default() }
    }

    /// The outgoing sequence number and timestamp for an incoming packet that is forwarded.
    pub fn forward(&mut self, incoming: u16, timestamp: u32) -> (u16, u32) {
        if !self.started {
            self.started = true;
            self.offset = self.offset.wrapping_sub(incoming);
            self.rebase_ts = false;
        } else if self.skipped {
            self.skipped = false;
            self.offset = self.last_out.wrapping_add(1).wrapping_sub(incoming);
        }
        if self.rebase_ts {
            self.rebase_ts = false;
            self.ts_offset = self.last_out_ts.wrapping_add(SWITCH_TIMESTAMP_STEP).wrapping_sub(timestamp);
        }
        let out = incoming.wrapping_add(self.offset);
        let out_ts = timestamp.wrapping_add(self.ts_offset);
        // Newer in RFC 1982 serial arithmetic.
        if out.wrapping_sub(self.last_out) < 0x8000 {
            self.last_out = out;
            self.last_out_ts = out_ts;
        }
        (out, out_ts)
    }

    /// An incoming packet deliberately not forwarded.
    pub fn skip(&mut self) {
        if self.started {
            self.skipped = true;
        }
    }

    /// The next forwarded packet starts another source stream (its own sequence and timestamp
    /// spaces): continue both where the subscriber's stream left off.
    pub fn switch_source(&mut self) {
        if self.started {
            self.skipped = true;
            self.rebase_ts = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_across_deliberate_skips() {
        let mut f = Forwarder::new(1000);
        assert_eq!(f.forward(65534, 10).0, 1000);
        assert_eq!(f.forward(65535, 10).0, 1001);
        f.skip(); // 0
        f.skip(); // 1
        assert_eq!(f.forward(2, 3010), (1002, 3010));
        assert_eq!(f.forward(3, 3010).0, 1003);
    }

    #[test]
    fn upstream_loss_and_reordering_stay_visible() {
        let mut f = Forwarder::new(10);
        assert_eq!(f.forward(100, 0).0, 10);
        assert_eq!(f.forward(102, 0).0, 12); // 101 lost upstream: a gap the subscriber can NACK
        assert_eq!(f.forward(101, 0).0, 11); // late arrival keeps its place
        assert_eq!(f.forward(103, 0).0, 13);
    }

    #[test]
    fn a_layer_switch_continues_sequence_and_timestamp() {
        let mut f = Forwarder::new(500);
        assert_eq!(f.forward(7000, 90_000), (500, 90_000));
        assert_eq!(f.forward(7001, 93_000), (501, 93_000));
        f.switch_source();
        // The new layer has its own spaces.
        assert_eq!(f.forward(40, 1_000_000), (502, 96_000));
        assert_eq!(f.forward(41, 1_003_000), (503, 99_000));
    }
}
