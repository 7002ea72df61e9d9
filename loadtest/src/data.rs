//! The room data channel under load: each participant sends stamped messages to everyone and
//! measures what the SFU relays to it (count, one-way delay) and what it refuses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::PeerConnection;

use crate::participant::Stats;

/// A message: the send time (µs since the epoch, 8 bytes), then filler to a chat-like size.
const MESSAGE_BYTES: usize = 64;

pub struct DataEnd {
    channel: Arc<dyn DataChannel>,
    open: Arc<AtomicBool>,
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Creates the room data channel on `pc` (before the offer) and counts what arrives on it.
pub async fn open(pc: &Arc<dyn PeerConnection>, stats: Arc<Mutex<Stats>>) -> anyhow::Result<DataEnd> {
    let channel = pc.create_data_channel(jiefen_media::data::LABEL, None).await?;
    let open = Arc::new(AtomicBool::new(false));
    let (ch, flag) = (channel.clone(), open.clone());
    tokio::spawn(async move {
        while let Some(event) = ch.poll().await {
            match event {
                DataChannelEvent::OnOpen => flag.store(true, Ordering::Relaxed),
                DataChannelEvent::OnClose => flag.store(false, Ordering::Relaxed),
                DataChannelEvent::OnMessage(m) => record(&m.data, &stats),
                _ => {}
            }
        }
    });
    Ok(DataEnd { channel, open })
}

/// A relayed frame: `0x01`, sender length, sender, flags, payload; a refusal starts with `0xEE`.
fn record(frame: &[u8], stats: &Mutex<Stats>) {
    let Ok(mut s) = stats.lock() else { return };
    match frame.first() {
        Some(0xEE) => s.data_refused += 1,
        Some(0x01) if frame.len() >= 2 => {
            let start = 3 + usize::from(frame[1]);
            let Some(stamp) = frame.get(start..start + 8) else { return };
            let sent = u64::from_be_bytes(stamp.try_into().unwrap_or([0; 8]));
            let delay = now_us().saturating_sub(sent);
            s.data_received += 1;
            s.data_delay_sum_us += delay;
            s.data_delay_max_us = s.data_delay_max_us.max(delay);
        }
        _ => {}
    }
}

impl DataEnd {
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Sends one stamped message to everyone in the room.
    pub async fn send_stamped(&self, stats: &Mutex<Stats>) {
        let mut frame = BytesMut::with_capacity(3 + MESSAGE_BYTES);
        frame.extend_from_slice(&[0x01, 0, 0]);
        frame.extend_from_slice(&now_us().to_be_bytes());
        frame.resize(3 + MESSAGE_BYTES, b'.');
        if self.channel.send(frame).await.is_ok()
            && let Ok(mut s) = stats.lock()
        {
            s.data_sent += 1;
        }
    }
}
