//! The thin I/O driver: one thread per worker, each with its own UDP socket and a
//! single-threaded tokio runtime that feeds a [`WorkerCore`]. Rooms are pinned to a worker.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::core::{IceCredentials, Limits, MediaError, OfferRequest, ParticipantOptions, WorkerCore};
use crate::ids::{ParticipantId, RoomId};
use crate::MediaEvent;

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where the sockets bind (usually 0.0.0.0 or 127.0.0.1).
    pub bind_ip: IpAddr,
    /// The address announced in ICE candidates.
    pub public_ip: IpAddr,
    /// Worker i listens on `first_port + i`.
    pub first_port: u16,
    pub workers: usize,
    /// Datagrams per send system call ([`crate::batch`]); 1 sends one at a time.
    pub send_batch: usize,
    pub limits: Limits,
}

/// Live counters across all workers, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub rooms: AtomicUsize,
    pub participants: AtomicUsize,
    pub tracks: AtomicUsize,
    pub packets_in: AtomicU64,
    pub packets_forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    /// Room data channel messages delivered, refused (the sender told why), dropped for a
    /// recipient too far behind.
    pub data_relayed: AtomicU64,
    pub data_refused: AtomicU64,
    pub data_dropped: AtomicU64,
    pub workers_running: AtomicUsize,
}

type Reply<T> = oneshot::Sender<Result<T, MediaError>>;

enum Command {
    CreateRoom(RoomId, mpsc::UnboundedSender<MediaEvent>, Reply<()>),
    CloseRoom(RoomId),
    AddParticipant(RoomId, ParticipantId, ParticipantOptions, Reply<IceCredentials>),
    RemoveParticipant(RoomId, ParticipantId, Reply<()>),
    ApplyOffer(RoomId, ParticipantId, OfferRequest, Reply<String>),
    SetGroup(RoomId, ParticipantId, Option<String>, Reply<()>),
    SetPreferredLayer(RoomId, ParticipantId, crate::TrackId, u8, Reply<()>),
    SetRecordingTap(RoomId, Option<crate::core::RecordingTap>, Reply<()>),
}

#[derive(Clone)]
struct WorkerHandle {
    commands: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
}

/// The media plane: cheap to clone, shared by every signaling connection.
#[derive(Clone)]
pub struct Media {
    workers: Arc<Vec<WorkerHandle>>,
    stats: Arc<MediaStats>,
    next: Arc<AtomicUsize>,
}

/// A room pinned to one worker. Dropping it does not close the room; call [`RoomHandle::close`].
#[derive(Clone)]
pub struct RoomHandle {
    pub room: RoomId,
    worker: WorkerHandle,
}

impl Media {
    /// Binds every worker's socket and starts the threads; fails if a port is taken.
    pub fn start(config: MediaConfig) -> Result<Media, MediaError> {
        let stats = Arc::new(MediaStats::default());
        let mut workers = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let port = config
                .first_port
                .checked_add(u16::try_from(i).map_err(|_| MediaError::Io("too many workers".into()))?)
                .ok_or_else(|| MediaError::Io("media port range overflows".into()))?;
            let bind = SocketAddr::new(config.bind_ip, port);
            let socket = std::net::UdpSocket::bind(bind)
                .map_err(|e| MediaError::Io(format!("cannot bind UDP {bind}: {e}")))?;
            socket.set_nonblocking(true).map_err(|e| MediaError::Io(e.to_string()))?;
            let local_addr = socket.local_addr().map_err(|e| MediaError::Io(e.to_string()))?;
            let announce = SocketAddr::new(config.public_ip, local_addr.port());
            let (tx, rx) = mpsc::unbounded_channel();
            let core = WorkerCore::new(announce, config.limits.clone());
            let stats = stats.clone();
            let send_batch = config.send_batch;
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name(format!("media-worker-{i}"))
                .spawn(move || run_worker(socket, core, rx, stats, ready_tx, send_batch))
                .map_err(|e| MediaError::Io(e.to_string()))?;
            // Returned only once every worker runs, so that readiness checks never see a gap.
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .map_err(|_| MediaError::Io(format!("media worker {i} did not start")))?;
            workers.push(WorkerHandle { commands: tx, local_addr });
        }
        Ok(Media { workers: Arc::new(workers), stats, next: Arc::new(AtomicUsize::new(0)) })
    }

    pub fn stats(&self) -> &Arc<MediaStats> {
        &self.stats
    }

    /// The UDP addresses the workers listen on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.workers.iter().map(|w| w.local_addr).collect()
    }

    /// True while every worker thread is running.
    pub fn ready(&self) -> bool {
        self.stats.workers_running.load(Ordering::Relaxed) == self.workers.len()
            && self.workers.iter().all(|w| !w.commands.is_closed())
    }

    /// Creates a room on the next worker (round robin); its events arrive on the returned receiver.
    pub async fn create_room(&self, room: RoomId) -> Result<(RoomHandle, mpsc::UnboundedReceiver<MediaEvent>), MediaError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len().max(1);
        let worker = self.workers.get(i).cloned().ok_or(MediaError::WorkerGone)?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel();
        worker.commands.send(Command::CreateRoom(room.clone(), events_tx, tx)).map_err(|_| MediaError::WorkerGone)?;
        rx.await.map_err(|_| MediaError::WorkerGone)??;
        Ok((RoomHandle { room, worker }, events_rx))
    }
}

impl RoomHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, MediaError> {
        let (tx, rx) = oneshot::channel();
        self.worker.commands.send(make(tx)).map_err(|_| MediaError::WorkerGone)?;
        rx.await.map_err(|_| MediaError::WorkerGone)?
    }

    pub async fn add_participant(&self, pid: ParticipantId, options: ParticipantOptions) -> Result<IceCredentials, MediaError> {
        self.call(|tx| Command::AddParticipant(self.room.clone(), pid, options, tx)).await
    }

    pub async fn remove_participant(&self, pid: ParticipantId) -> Result<(), MediaError> {
        self.call(|tx| Command::RemoveParticipant(self.room.clone(), pid, tx)).await
    }

    pub async fn apply_offer(&self, pid: ParticipantId, offer: OfferRequest) -> Result<String, MediaError> {
        self.call(|tx| Command::ApplyOffer(self.room.clone(), pid, offer, tx)).await
    }

    pub async fn set_group(&self, pid: ParticipantId, group: Option<String>) -> Result<(), MediaError> {
        self.call(|tx| Command::SetGroup(self.room.clone(), pid, group, tx)).await
    }

    /// The largest simulcast layer (0 = q, 1 = h, 2 = f) `pid` wants for `track`.
    pub async fn set_preferred_layer(&self, pid: ParticipantId, track: crate::TrackId, layer: u8) -> Result<(), MediaError> {
        self.call(|tx| Command::SetPreferredLayer(self.room.clone(), pid, track, layer, tx)).await
    }

    /// Copies the room's incoming media to `tap` (bounded; never blocks forwarding), or stops.
    pub async fn set_recording_tap(&self, tap: Option<crate::core::RecordingTap>) -> Result<(), MediaError> {
        self.call(|tx| Command::SetRecordingTap(self.room.clone(), tap, tx)).await
    }

    pub fn close(&self) {
        let _ = self.worker.commands.send(Command::CloseRoom(self.room.clone()));
    }
}

fn run_worker(
    socket: std::net::UdpSocket,
    core: WorkerCore,
    commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<MediaStats>,
    ready: std::sync::mpsc::Sender<()>,
    send_batch: usize,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "media worker cannot start its runtime");
            return;
        }
    };
    runtime.block_on(worker_loop(socket, core, commands, stats, ready, send_batch));
}

async fn worker_loop(
    socket: std::net::UdpSocket,
    mut core: WorkerCore,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<MediaStats>,
    ready: std::sync::mpsc::Sender<()>,
    send_batch: usize,
) {
    let socket = match UdpSocket::from_std(socket) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "media worker cannot use its socket");
            return;
        }
    };
    stats.workers_running.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(());
    let mut rooms: HashMap<RoomId, mpsc::UnboundedSender<MediaEvent>> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let mut sender = crate::batch::BatchSender::new(send_batch);
    let mut outbox: Vec<crate::core::Transmit> = Vec::with_capacity(crate::batch::MAX_BATCH);
    let mut last = core.counters();
    let mut gauges = (0usize, 0usize, 0usize);
    loop {
        while let Some(t) = core.poll_transmit() {
            outbox.push(t);
        }
        if !outbox.is_empty() {
            sender.send_all(&socket, &outbox).await;
            outbox.clear();
        }
        while let Some((room, event)) = core.poll_event() {
            if let Some(tx) = rooms.get(&room) {
                let _ = tx.send(event);
            }
        }
        publish_stats(&core, &stats, &mut last, &mut gauges);
        let deadline = core.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::select! {
            biased;
            command = commands.recv() => {
                let Some(command) = command else { break };
                let now = Instant::now();
                match command {
                    Command::CreateRoom(room, events, reply) => {
                        let result = core.create_room(room.clone());
                        if result.is_ok() { rooms.insert(room, events); }
                        let _ = reply.send(result);
                    }
                    Command::CloseRoom(room) => { core.close_room(&room); rooms.remove(&room); }
                    Command::AddParticipant(room, pid, options, reply) => {
                        let _ = reply.send(core.add_participant(now, &room, pid, options));
                    }
                    Command::RemoveParticipant(room, pid, reply) => {
                        let _ = reply.send(core.remove_participant(&room, &pid));
                    }
                    Command::ApplyOffer(room, pid, offer, reply) => {
                        let _ = reply.send(core.apply_offer(now, &room, &pid, offer));
                    }
                    Command::SetGroup(room, pid, group, reply) => {
                        let _ = reply.send(core.set_group(&room, &pid, group));
                    }
                    Command::SetRecordingTap(room, tap, reply) => {
                        let _ = reply.send(core.set_recording_tap(Instant::now(), &room, tap));
                    }
                    Command::SetPreferredLayer(room, pid, track, layer, reply) => {
                        let _ = reply.send(core.set_preferred_layer(&room, &pid, &track, layer));
                    }
                }
            }
            received = socket.recv_from(&mut buf) => {
                match received {
                    Ok((n, from)) => {
                        let now = Instant::now();
                        core.handle_datagram(now, from, &buf[..n]);
                        // Drain whatever else is queued without going back through select.
                        for _ in 0..64 {
                            match socket.try_recv_from(&mut buf) {
                                Ok((n, from)) => core.handle_datagram(now, from, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "recv failed"),
                }
            }
            _ = sleep => {
                core.handle_timeout(Instant::now());
            }
        }
    }
    stats.workers_running.fetch_sub(1, Ordering::Relaxed);
}

fn publish_stats(
    core: &WorkerCore,
    stats: &MediaStats,
    last: &mut crate::core::CoreCounters,
    gauges: &mut (usize, usize, usize),
) {
    let now = core.counters();
    stats.packets_in.fetch_add(now.packets_in - last.packets_in, Ordering::Relaxed);
    stats.packets_forwarded.fetch_add(now.packets_forwarded - last.packets_forwarded, Ordering::Relaxed);
    stats.bytes_forwarded.fetch_add(now.bytes_forwarded - last.bytes_forwarded, Ordering::Relaxed);
    stats.data_relayed.fetch_add(now.data_relayed - last.data_relayed, Ordering::Relaxed);
    stats.data_refused.fetch_add(now.data_refused - last.data_refused, Ordering::Relaxed);
    stats.data_dropped.fetch_add(now.data_dropped - last.data_dropped, Ordering::Relaxed);
    *last = now;
    // Gauges are summed across workers: publish each worker's change, not its value.
    let current = (core.room_count(), core.participant_count(), core.track_count());
    if current != *gauges {
        adjust(&stats.rooms, gauges.0, current.0);
        adjust(&stats.participants, gauges.1, current.1);
        adjust(&stats.tracks, gauges.2, current.2);
        *gauges = current;
    }
}

fn adjust(gauge: &AtomicUsize, old: usize, new: usize) {
    if new >= old {
        gauge.fetch_add(new - old, Ordering::Relaxed);
    } else {
        gauge.fetch_sub(old - new, Ordering::Relaxed);
    }
}
