//! An interceptor in front of rtc's NACK responder that answers each lost packet at most once
//! per [`RESEND_GUARD`] and at most [`MAX_RESENDS`] times: a subscriber that repeats its NACK before the retransmission could have
//! arrived (a NACK per 100 ms is common) would otherwise get the packet again each time. Measured
//! with webrtc-rs subscribers, which keep asking while an answer is under way: 839
//! retransmissions for 123 lost packets without the guard.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};

use crate::read_filter::ReadFilter;

/// The chain position: wire-ward of the NACK responder (4 000), application-ward of the pacer.
pub const SLOT: usize = 3_500;

/// A packet retransmitted less than this long ago is not sent again: about a round trip on the
/// links we serve. A retransmission lost in turn is answered at the next NACK after it.
pub const RESEND_GUARD: Duration = Duration::from_millis(150);

/// After this many retransmissions of one packet it is given up (its frame is then recovered by
/// a keyframe request): three losses in a row mean the link is not carrying it.
pub const MAX_RESENDS: u8 = 3;

/// Entries older than this are forgotten (a sequence number is reused after 65 536 packets).
const FORGET_AFTER: Duration = Duration::from_secs(2);

/// The interceptor to register at [`SLOT`].
pub type NackGuardInterceptor = crate::read_filter::FilterInterceptor<NackGuard>;

#[derive(Default)]
pub struct NackGuard {
    /// (media SSRC, sequence number) → when last retransmitted, how often.
    resent: HashMap<(u32, u16), (Instant, u8)>,
    last_pruned: Option<Instant>,
}

impl NackGuard {
    /// The sequence numbers of `nack` that may be retransmitted now; remembers them.
    fn admit(&mut self, now: Instant, nack: &TransportLayerNack) -> Vec<u16> {
        let mut admitted = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let key = (nack.media_ssrc, seq);
                let entry = self.resent.entry(key).or_insert((now, 0));
                let due = entry.1 == 0 || now.saturating_duration_since(entry.0) >= RESEND_GUARD;
                if due && entry.1 < MAX_RESENDS {
                    *entry = (now, entry.1 + 1);
                    admitted.push(seq);
                }
            }
        }
        if self.last_pruned.is_none_or(|t| now.saturating_duration_since(t) > FORGET_AFTER) {
            self.resent.retain(|_, (at, _)| now.saturating_duration_since(*at) < FORGET_AFTER);
            self.last_pruned = Some(now);
        }
        admitted
    }
}

impl ReadFilter for NackGuard {
    fn filter(&mut self, mut msg: TaggedPacket) -> Option<TaggedPacket> {
        let now = msg.now;
        if let Packet::Rtcp(packets) = &mut msg.message.packet
            && packets.iter().any(|p| p.as_any().is::<TransportLayerNack>())
        {
            let mut kept: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
            for p in packets.drain(..) {
                match p.as_any().downcast_ref::<TransportLayerNack>() {
                    Some(nack) => {
                        let admitted = self.admit(now, nack);
                        if !admitted.is_empty() {
                            kept.push(Box::new(TransportLayerNack {
                                sender_ssrc: nack.sender_ssrc,
                                media_ssrc: nack.media_ssrc,
                                nacks: nack_pairs_from_sequence_numbers(&admitted),
                            }));
                        }
                    }
                    None => kept.push(p),
                }
            }
            if kept.is_empty() {
                return None;
            }
            *packets = kept;
        }
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nack(seqs: &[u16]) -> TransportLayerNack {
        TransportLayerNack { sender_ssrc: 1, media_ssrc: 42, nacks: nack_pairs_from_sequence_numbers(seqs) }
    }

    #[test]
    fn a_packet_is_resent_once_per_guard_interval() {
        let mut guard = NackGuard::default();
        let t0 = Instant::now();
        assert_eq!(guard.admit(t0, &nack(&[10, 11, 13])), vec![10, 11, 13]);
        assert_eq!(guard.admit(t0 + Duration::from_millis(100), &nack(&[10, 11, 12])), vec![12], "only the new loss");
        assert_eq!(guard.admit(t0 + Duration::from_millis(160), &nack(&[10, 12])), vec![10], "12 was resent at 100 ms");
        let other = TransportLayerNack { media_ssrc: 43, ..nack(&[10]) };
        assert_eq!(guard.admit(t0 + Duration::from_millis(160), &other), vec![10], "per stream");
        assert_eq!(guard.admit(t0 + Duration::from_millis(400), &nack(&[10])), vec![10], "a third time");
        assert!(guard.admit(t0 + Duration::from_millis(600), &nack(&[10])).is_empty(), "then given up");
    }

    #[test]
    fn old_entries_are_forgotten() {
        let mut guard = NackGuard::default();
        let t0 = Instant::now();
        guard.admit(t0, &nack(&(0..500).collect::<Vec<_>>()));
        guard.admit(t0 + Duration::from_secs(3), &nack(&[7]));
        assert_eq!(guard.resent.len(), 1);
    }
}
