//! `/metrics` in the Prometheus text format, from atomics kept by each part.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

#[derive(Default)]
pub struct HttpMetrics {
    /// Requests by status class: 1xx..5xx.
    by_class: [AtomicU64; 5],
}

pub async fn count_requests(State(m): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let class = usize::from(res.status().as_u16() / 100).clamp(1, 5) - 1;
    m.by_class[class].fetch_add(1, Ordering::Relaxed);
    res
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Prometheus metrics: HTTP requests, rooms, participants, tracks, packets and bytes forwarded, database pool.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP jiefen_http_requests_total HTTP requests answered, by status class.");
    let _ = writeln!(out, "# TYPE jiefen_http_requests_total counter");
    for (i, c) in state.metrics.by_class.iter().enumerate() {
        let _ = writeln!(out, "jiefen_http_requests_total{{class=\"{}xx\"}} {}", i + 1, c.load(Ordering::Relaxed));
    }
    let media = state.signaling.media().stats();
    let gauges = [
        ("jiefen_rooms", "Rooms open on this node's media plane.", media.rooms.load(Ordering::Relaxed) as u64),
        ("jiefen_participants", "Participants with a peer connection on this node.", media.participants.load(Ordering::Relaxed) as u64),
        ("jiefen_tracks", "Published tracks on this node.", media.tracks.load(Ordering::Relaxed) as u64),
        ("jiefen_media_workers_running", "Media worker threads running.", media.workers_running.load(Ordering::Relaxed) as u64),
        ("jiefen_db_pool_connections", "Open database connections.", u64::from(state.db.pool.size())),
        ("jiefen_db_pool_idle", "Idle database connections.", state.db.pool.num_idle() as u64),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    let counters = [
        ("jiefen_media_packets_received_total", "Datagrams received by the media workers.", media.packets_in.load(Ordering::Relaxed)),
        ("jiefen_media_packets_forwarded_total", "RTP packets forwarded to subscribers.", media.packets_forwarded.load(Ordering::Relaxed)),
        ("jiefen_media_bytes_forwarded_total", "RTP payload bytes forwarded to subscribers.", media.bytes_forwarded.load(Ordering::Relaxed)),
        ("jiefen_data_messages_relayed_total", "Room data channel messages delivered to a recipient.", media.data_relayed.load(Ordering::Relaxed)),
        ("jiefen_data_messages_refused_total", "Room data channel messages refused (too large, too many, not permitted, malformed, unknown recipient).", media.data_refused.load(Ordering::Relaxed)),
        ("jiefen_data_messages_dropped_total", "Room data channel messages not delivered to a recipient too far behind.", media.data_dropped.load(Ordering::Relaxed)),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
