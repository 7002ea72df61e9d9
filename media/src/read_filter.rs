//! An `rtc` interceptor that looks at (and may rewrite or drop) what comes in from the peer and
//! passes everything else through: the shape shared by the SFU's own interceptors.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;

/// What an interceptor does with an inbound packet: pass it on (changed or not), or drop it.
pub trait ReadFilter: Send + Sync {
    fn filter(&mut self, msg: TaggedPacket) -> Option<TaggedPacket>;
}

/// Runs a [`ReadFilter`] on the read path; writes pass untouched.
#[derive(Default)]
pub struct FilterInterceptor<F> {
    filter: F,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl<F: ReadFilter> Protocol<TaggedPacket, TaggedPacket, ()> for FilterInterceptor<F> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(msg) = self.filter.filter(msg) {
            self.reads.push_back(msg);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl<F: ReadFilter> Interceptor for FilterInterceptor<F> {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
