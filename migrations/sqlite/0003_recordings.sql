-- Recordings of video sessions: one row per start/stop, its files listed in the manifest.
-- Kept in lockstep with the other folder (tests/schema_lockstep.rs compares the two).
create table recording (
    recording_id integer primary key autoincrement,
    room text not null,
    session_id bigint references video_session (session_id),
    case_id bigint references dispute_case (case_id),
    dir text not null,
    storage text not null default 'local',
    object_prefix text,
    status text not null check (status in ('recording', 'complete', 'failed', 'deleted')),
    manifest text,
    manifest_sha256 text,
    manifest_sm3 text,
    problem text,
    started_at text not null,
    ended_at text,
    deleted_at text,
    composite_status text,
    composite_sha256 text,
    composite_sm3 text
);
create index recording_case on recording (case_id);
create index recording_room on recording (room);

-- Background work (composite recordings now; PDFs and court pushes later): claimed one at a time,
-- retried with backoff, progress visible.
create table job (
    job_id integer primary key autoincrement,
    kind text not null,
    payload text not null,
    status text not null check (status in ('queued', 'running', 'done', 'failed')),
    attempts bigint not null,
    progress bigint not null,
    error text,
    run_after text not null,
    created_at text not null,
    updated_at text not null
);
create index job_queue on job (status, run_after);
