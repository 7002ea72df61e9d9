//! Sending a worker's datagrams: in batches through one sendmmsg(2) system call each (any mix of
//! destinations, which UDP GSO cannot do: it sends one buffer to one address), or one
//! sendto(2) per datagram when the batch size is 1.
//!
//! An SFU sends each incoming packet to every subscriber, so a worker's outbox after one wake-up
//! holds many datagrams to many addresses: the system call per datagram is what batching saves.
//! (`nix` wraps the call safely; the workspace forbids `unsafe`.)

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::core::Transmit;

/// The most datagrams one system call carries (Linux caps sendmmsg at 1024; beyond a few dozen
/// the saving per datagram is already small).
pub const MAX_BATCH: usize = 64;

/// The default: see docs/benchmarks.md for what it saves.
pub const DEFAULT_BATCH: usize = 32;

pub struct BatchSender {
    batch: usize,
    headers: Option<MultiHeaders<SockaddrStorage>>,
}

/// What became of an outbox.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    pub sent: usize,
    /// Refused by the kernel for a reason other than a full buffer (logged at debug).
    pub failed: usize,
    pub system_calls: usize,
}

impl BatchSender {
    /// `batch` datagrams per system call (1: plain sendto; at most [`MAX_BATCH`]).
    pub fn new(batch: usize) -> BatchSender {
        let batch = batch.clamp(1, MAX_BATCH);
        let headers = (batch > 1).then(|| MultiHeaders::preallocate(batch, None));
        BatchSender { batch, headers }
    }

    /// Sends every datagram of `outbox`, waiting for room in the socket's buffer when it is full
    /// (media tolerates delay less than loss, and the buffer drains in microseconds).
    pub async fn send_all(&mut self, socket: &UdpSocket, outbox: &[Transmit]) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        let mut rest = outbox;
        while !rest.is_empty() {
            let n = rest.len().min(self.batch);
            outcome.system_calls += 1;
            match self.send_some(socket, &rest[..n]) {
                Ok(sent) => {
                    // A batch stops at the first datagram the kernel refuses; it is retried
                    // first next round, and then its error is reported.
                    let sent = sent.min(n);
                    outcome.sent += sent;
                    rest = &rest[sent..];
                    if sent == 0 {
                        outcome.failed += 1;
                        rest = &rest[1..];
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        outcome.failed += rest.len();
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(to = %rest[0].to, error = %e, "send failed");
                    outcome.failed += 1;
                    rest = &rest[1..];
                }
            }
        }
        outcome
    }

    fn send_some(&mut self, socket: &UdpSocket, batch: &[Transmit]) -> io::Result<usize> {
        let Some(headers) = self.headers.as_mut().filter(|_| batch.len() > 1) else {
            return socket.try_send_to(&batch[0].bytes, batch[0].to).map(|_| 1);
        };
        let slices: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|t| [IoSlice::new(&t.bytes)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = batch.iter().map(|t| Some(SockaddrStorage::from(t.to))).collect();
        let no_control: [ControlMessage<'_>; 0] = [];
        socket.try_io(Interest::WRITABLE, || {
            let results = sendmmsg(socket.as_raw_fd(), headers, &slices, &addrs, no_control, MsgFlags::empty())
                .map_err(io::Error::from)?;
            Ok(results.count())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use std::net::SocketAddr;

    async fn receive_all(socket: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while got.len() < n {
            let (len, _) = tokio::time::timeout(std::time::Duration::from_secs(2), socket.recv_from(&mut buf))
                .await
                .expect("datagram within 2 s")
                .expect("recv");
            got.push(buf[..len].to_vec());
        }
        got
    }

    #[tokio::test]
    async fn a_batch_reaches_several_destinations_in_order_with_fewer_calls() {
        let sender_socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let dest: [SocketAddr; 2] = [a.local_addr().expect("addr"), b.local_addr().expect("addr")];
        let outbox: Vec<Transmit> = (0..100u8)
            .map(|i| Transmit { to: dest[usize::from(i % 2)], bytes: BytesMut::from(&[i; 100][..]) })
            .collect();
        let mut sender = BatchSender::new(32);
        let outcome = sender.send_all(&sender_socket, &outbox).await;
        assert_eq!(outcome.sent, 100);
        assert_eq!(outcome.failed, 0);
        assert!(outcome.system_calls <= 5, "{outcome:?}");
        let to_a = receive_all(&a, 50).await;
        let to_b = receive_all(&b, 50).await;
        assert_eq!(to_a.iter().map(|d| d[0]).collect::<Vec<_>>(), (0..100).step_by(2).collect::<Vec<u8>>());
        assert_eq!(to_b.iter().map(|d| d[0]).collect::<Vec<_>>(), (1..100).step_by(2).collect::<Vec<u8>>());
        assert!(to_a.iter().all(|d| d.len() == 100));
    }

    #[tokio::test]
    async fn a_refused_datagram_does_not_stop_the_rest() {
        let sender_socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = a.local_addr().expect("addr");
        // An IPv6 destination from an IPv4 socket is refused by the kernel.
        let bad: SocketAddr = "[::1]:9".parse().expect("addr");
        for batch in [1, 8] {
            let outbox = vec![
                Transmit { to, bytes: BytesMut::from(&b"one"[..]) },
                Transmit { to: bad, bytes: BytesMut::from(&b"bad"[..]) },
                Transmit { to, bytes: BytesMut::from(&b"two"[..]) },
            ];
            let outcome = BatchSender::new(batch).send_all(&sender_socket, &outbox).await;
            assert_eq!((outcome.sent, outcome.failed), (2, 1), "batch {batch}: {outcome:?}");
            assert_eq!(receive_all(&a, 2).await, vec![b"one".to_vec(), b"two".to_vec()]);
        }
    }
}
