//! Per-subscription sequence-number rewriting: the subscriber sees one continuous stream even
//! when the SFU deliberately skips packets (waiting for a keyframe, caucus, a paused layer),
//! while genuine upstream loss stays visible as a gap so that NACK can repair it.

#[derive(Debug, Default, Clone)]
pub struct Forwarder {
    started: bool,
    offset: u16,
    last_out: u16,
    /// Packets were skipped on purpose since the last forwarded one.
    skipped: bool,
}

impl Forwarder {
    /// `base` is the first outgoing sequence number (random, per RFC 3550).
    pub fn new(base: u16) -> Forwarder {
        Forwarder { started: false, offset: base, last_out: base.wrapping_sub(1), skipped: false }
    }

    /// The outgoing sequence number for an incoming one that is forwarded.
    pub fn forward(&mut self, incoming: u16) -> u16 {
        if !self.started {
            self.started = true;
            self.offset = self.offset.wrapping_sub(incoming);
        } else if self.skipped {
            self.skipped = false;
            self.offset = self.last_out.wrapping_add(1).wrapping_sub(incoming);
        }
        let out = incoming.wrapping_add(self.offset);
        // Newer in RFC 1982 serial arithmetic.
        if out.wrapping_sub(self.last_out) < 0x8000 {
            self.last_out = out;
        }
        out
    }

    /// An incoming packet deliberately not forwarded.
    pub fn skip(&mut self) {
        if self.started {
            self.skipped = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_across_deliberate_skips() {
        let mut f = Forwarder::new(1000);
        assert_eq!(f.forward(65534), 1000);
        assert_eq!(f.forward(65535), 1001);
        f.skip(); // 0
        f.skip(); // 1
        assert_eq!(f.forward(2), 1002);
        assert_eq!(f.forward(3), 1003);
    }

    #[test]
    fn upstream_loss_and_reordering_stay_visible() {
        let mut f = Forwarder::new(10);
        assert_eq!(f.forward(100), 10);
        assert_eq!(f.forward(102), 12); // 101 lost upstream: a gap the subscriber can NACK
        assert_eq!(f.forward(101), 11); // late arrival keeps its place
        assert_eq!(f.forward(103), 13);
    }
}
