//! jiefen's recorder. On the media node it takes a room's packets from the media plane's
//! recording tap and writes each published track, stream-copied (no transcoding), into its own
//! WebM (VP8, Opus) or Matroska (H.264) file, incrementally, so that a crash loses at most the
//! cluster being written. A manifest lists the tracks, their times and SHA-256 hashes.
//!
//! It knows nothing of HTTP, SQL or cases: `jiefen` wires it to signaling and to the case log.

pub mod codec;
pub mod ebml;
pub mod hash;
pub mod session;
pub mod track;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiefen_media::{RecordingTap, TapItem};
use tokio::sync::mpsc;

pub use session::{MANIFEST_FILE, Manifest, RoomRecording};

/// Packets buffered between the media worker and the recorder thread.
pub const TAP_CAPACITY: usize = 4096;

/// A recording in progress: drop the tap (or call `stop`) and `finished` yields the manifest.
pub struct Running {
    pub tap: RecordingTap,
    pub dir: PathBuf,
    pub finished: tokio::sync::oneshot::Receiver<Result<(Manifest, String), String>>,
}

/// Starts recording `room` into `dir` on a thread of its own (file writes never block the
/// async runtime or the media worker).
pub fn start(room: &str, dir: &Path) -> std::io::Result<Running> {
    let (tx, rx) = mpsc::channel::<TapItem>(TAP_CAPACITY);
    let recording = RoomRecording::new(room, dir)?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let name = format!("recorder-{room}");
    std::thread::Builder::new().name(name.chars().take(15).collect()).spawn(move || {
        let result = run(recording, rx);
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    })?;
    Ok(Running { tap: RecordingTap { sender: tx }, dir: dir.to_path_buf(), finished: done_rx })
}

fn run(mut recording: RoomRecording, mut rx: mpsc::Receiver<TapItem>) -> std::io::Result<(Manifest, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let mut failed: Option<std::io::Error> = None;
    runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                p = rx.recv() => match p {
                    Some(p) => {
                        if let Err(e) = recording.push_item(p) {
                            // A full disk: stop writing, keep draining so the tap never backs up.
                            tracing::error!(error = %e, dir = %recording.dir().display(), "recording write failed; recording stopped");
                            failed = Some(e);
                            break;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let _ = recording.tick(Instant::now());
                }
            }
        }
        if failed.is_some() {
            while rx.recv().await.is_some() {}
        }
    });
    if let Some(e) = &failed {
        recording.note_problem(e.to_string());
    }
    let result = recording.finish(0);
    match failed {
        Some(e) => Err(e),
        None => result,
    }
}
