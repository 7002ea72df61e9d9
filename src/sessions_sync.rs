//! Records what happens in a case's video sessions from the signaling service's events:
//! attendance (who joined, when, for how long), session start and end, recording on/off.

use jiefen_signaling::SessionEvent;
use tokio::sync::broadcast;

use crate::db::{Db, DbError, now_text};
use crate::store::cases;

pub async fn run(db: Db, mut events: broadcast::Receiver<SessionEvent>) {
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Err(e) = apply(&db, &event).await {
                    tracing::warn!(error = %e, ?event, "could not record a session event");
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "session events were dropped: attendance may be incomplete"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// (session_id, case_id) of the case session held in `room`, if it is one.
async fn session_of(db: &Db, room: &str) -> Result<Option<(i64, i64)>, DbError> {
    Ok(sqlx::query_as("select session_id, case_id from video_session where room = $1").bind(room).fetch_optional(&db.pool).await?)
}

pub async fn apply(db: &Db, event: &SessionEvent) -> Result<(), DbError> {
    let now = now_text();
    match event {
        SessionEvent::SessionStarted { room } => {
            let Some((session_id, case_id)) = session_of(db, room).await? else { return Ok(()) };
            sqlx::query("update video_session set status = 'live', started_at = coalesce(started_at, $1), ended_at = null where session_id = $2").bind(&now).bind(session_id).execute(&db.pool).await?;
            cases::record_event(db, case_id, "session_started", "system:signaling", &serde_json::json!({ "session_id": session_id })).await?;
        }
        SessionEvent::SessionEnded { room } => {
            let Some((session_id, case_id)) = session_of(db, room).await? else { return Ok(()) };
            sqlx::query("update video_session set status = 'ended', ended_at = $1 where session_id = $2").bind(&now).bind(session_id).execute(&db.pool).await?;
            sqlx::query("update session_attendance set left_at = $1 where session_id = $2 and left_at is null").bind(&now).bind(session_id).execute(&db.pool).await?;
            cases::record_event(db, case_id, "session_ended", "system:signaling", &serde_json::json!({ "session_id": session_id })).await?;
        }
        SessionEvent::ParticipantJoined { room, identity, .. } => {
            let Some((session_id, case_id)) = session_of(db, room).await? else { return Ok(()) };
            sqlx::query("insert into session_attendance (session_id, identity, joined_at) values ($1, $2, $3)").bind(session_id).bind(identity).bind(&now).execute(&db.pool).await?;
            // The join page shows the recording notice before anyone can join: a join is the
            // participant's acknowledgement, kept in the chain.
            cases::record_event(db, case_id, "participant_joined", &format!("participant:{identity}"), &serde_json::json!({ "session_id": session_id, "recording_notice_shown": true }))
                .await?;
        }
        SessionEvent::ParticipantLeft { room, identity } => {
            let Some((session_id, _)) = session_of(db, room).await? else { return Ok(()) };
            sqlx::query("update session_attendance set left_at = $1 where session_id = $2 and identity = $3 and left_at is null").bind(&now).bind(session_id).bind(identity).execute(&db.pool).await?;
        }
        SessionEvent::RecordingChanged { room, recording, by } => {
            let Some((session_id, case_id)) = session_of(db, room).await? else { return Ok(()) };
            let kind = if *recording { "recording_started" } else { "recording_stopped" };
            cases::record_event(db, case_id, kind, &format!("participant:{by}"), &serde_json::json!({ "session_id": session_id })).await?;
        }
    }
    Ok(())
}
