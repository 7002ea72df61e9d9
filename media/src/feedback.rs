//! An interceptor at the far end of each peer connection's chain that lets a subscriber's
//! keyframe requests (PLI, FIR) through to the SFU. rtc stops inbound RTCP at the chain's
//! terminus unless marked for the application; everything else (reports, NACK, transport-wide
//! feedback) has been consumed by the interceptors before this one.

use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;

use crate::read_filter::ReadFilter;

/// The chain position: after every built-in interceptor (the named slots end at 13 000).
pub const SLOT: usize = 14_000;

/// The interceptor to register at [`SLOT`].
pub type KeyframeRequestTap = crate::read_filter::FilterInterceptor<KeyframeRequests>;

#[derive(Default)]
pub struct KeyframeRequests;

/// Keyframe requests (from subscribers) and sender reports (from publishers: the recorder maps
/// RTP time to the sender's wallclock with them, for lip sync) go on to the SFU.
fn is_for_application(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() || any.is::<SenderReport>()
}

impl ReadFilter for KeyframeRequests {
    fn filter(&mut self, mut msg: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> =
                packets.iter().filter(|p| is_for_application(p.as_ref())).cloned().collect();
            if requests.is_empty() {
                return None;
            }
            // Only the requests go on: rtc names the packet by its first SSRC, which is then
            // the stream the request is about.
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        Some(msg)
    }
}
