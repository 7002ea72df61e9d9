//! Text messages to parties (one-time codes, session links). The real gateway is a contract
//! with a carrier that cannot be reached from here; the embedded default writes the message to
//! the log, and tests read what was "sent" from the same interface.

use std::sync::{Arc, Mutex};

pub trait SmsGateway: Send + Sync {
    fn send(&self, phone: &str, text: &str);
}

/// Logs the message (the phone masked) and keeps the last ones for whoever runs the server
/// locally or tests it.
#[derive(Default, Clone)]
pub struct LogSms {
    sent: Arc<Mutex<Vec<(String, String)>>>,
}

const KEEP: usize = 200;

impl SmsGateway for LogSms {
    fn send(&self, phone: &str, text: &str) {
        tracing::info!(phone = %crate::crypto::mask_phone(phone), %text, "SMS (log gateway)");
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.len() >= KEEP {
            sent.remove(0);
        }
        sent.push((crate::crypto::normalise(phone), text.to_string()));
    }
}

impl LogSms {
    /// The last message sent to `phone`.
    pub fn last_to(&self, phone: &str) -> Option<String> {
        let phone = crate::crypto::normalise(phone);
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter().rev().find(|(p, _)| *p == phone).map(|(_, t)| t.clone())
    }
}
