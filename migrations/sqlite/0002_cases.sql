-- Case management: categories, cases and parties, the hash-chained case event log, staff login
-- sessions, video sessions with their attendance, records, assessments and follow-ups.
-- Kept in lockstep with the other folder (tests/schema_lockstep.rs compares the two).

alter table staff_account add column display_name text not null default '';
alter table staff_account add column mediator_id bigint references mediator (mediator_id);
alter table staff_account add column totp_secret text;
alter table staff_account add column totp_pending text;
alter table staff_account add column failed_logins bigint not null default 0;
alter table staff_account add column locked_until text;
alter table staff_account add column disabled boolean not null default 0;

-- A mediator in the resource pool is a mediator, a pro-bono lawyer or a volunteer.
alter table mediator add column kind text not null default 'mediator';
alter table mediator add column max_load bigint not null default 8;

create table named_room (
    named_room_id integer primary key autoincrement,
    mediation_org_id bigint not null references mediation_org (mediation_org_id),
    name text not null unique,
    description text not null,
    created_at text not null
);

create table category (
    category_id integer primary key autoincrement,
    code text not null unique,
    name_zh text not null,
    name_en text not null,
    epidemic_zone boolean not null,
    active boolean not null,
    created_at text not null
);

create table dispute_case (
    case_id integer primary key autoincrement,
    case_number text not null unique,
    title text not null,
    summary text not null,
    category_code text not null references category (code),
    org_unit_id bigint not null references org_unit (org_unit_id),
    mediation_org_id bigint references mediation_org (mediation_org_id),
    mediator_id bigint references mediator (mediator_id),
    leader_staff_id bigint references staff_account (staff_account_id),
    status text not null,
    quick_track boolean not null,
    channel text not null,
    external_source text,
    external_id text,
    duplicate_of bigint references dispute_case (case_id),
    stage_due_at text,
    escalation_level bigint not null default 0,
    reopen_count bigint not null default 0,
    version bigint not null,
    created_at text not null,
    updated_at text not null,
    unique (external_source, external_id)
);
create index dispute_case_org_unit on dispute_case (org_unit_id);
create index dispute_case_status on dispute_case (status);
create index dispute_case_due on dispute_case (stage_due_at);

create table party (
    party_id integer primary key autoincrement,
    case_id bigint not null references dispute_case (case_id),
    role text not null check (role in ('applicant', 'respondent', 'third_party')),
    name text not null,
    phone_enc text,
    phone_index text,
    id_number_enc text,
    id_number_index text,
    address text not null,
    language text not null,
    created_at text not null
);
create index party_case on party (case_id);
create index party_phone_index on party (phone_index);
create index party_id_number_index on party (id_number_index);

-- Append-only; each entry's hash covers its content and the previous entry's hash.
create table case_event (
    case_event_id integer primary key autoincrement,
    case_id bigint not null references dispute_case (case_id),
    seq bigint not null,
    kind text not null,
    actor text not null,
    payload text not null,
    at text not null,
    prev_hash text not null,
    hash text not null,
    unique (case_id, seq)
);

create table auth_session (
    token_hash text primary key,
    staff_account_id bigint not null references staff_account (staff_account_id),
    created_at text not null,
    last_seen_at text not null,
    expires_at text not null
);

create table party_access_code (
    party_access_code_id integer primary key autoincrement,
    party_id bigint not null references party (party_id),
    code_hash text not null,
    attempts bigint not null,
    expires_at text not null,
    used_at text,
    created_at text not null
);

create table video_session (
    session_id integer primary key autoincrement,
    case_id bigint not null references dispute_case (case_id),
    room text not null unique,
    mode text not null check (mode in ('one_to_one', 'many_to_one', 'many_to_many')),
    lobby boolean not null,
    recording boolean not null,
    conference boolean not null,
    scheduled_at text not null,
    status text not null,
    started_at text,
    ended_at text,
    created_by bigint references staff_account (staff_account_id),
    created_at text not null
);
create index video_session_case on video_session (case_id);

create table session_invitee (
    session_invitee_id integer primary key autoincrement,
    session_id bigint not null references video_session (session_id),
    identity text not null,
    name text not null,
    role text not null,
    party_id bigint references party (party_id),
    staff_account_id bigint references staff_account (staff_account_id),
    department text,
    unique (session_id, identity)
);

create table session_attendance (
    session_attendance_id integer primary key autoincrement,
    session_id bigint not null references video_session (session_id),
    identity text not null,
    joined_at text not null,
    left_at text
);
create index session_attendance_session on session_attendance (session_id);

-- Minutes of a session, or a department's conclusion in a case conference.
create table mediation_record (
    mediation_record_id integer primary key autoincrement,
    case_id bigint not null references dispute_case (case_id),
    session_id bigint references video_session (session_id),
    kind text not null check (kind in ('minutes', 'conclusion')),
    department text,
    author_staff_id bigint not null references staff_account (staff_account_id),
    content text not null,
    created_at text not null
);

create table case_assessment (
    case_assessment_id integer primary key autoincrement,
    case_id bigint not null references dispute_case (case_id),
    kind text not null check (kind in ('family', 'psychological', 'legal')),
    assessor_staff_id bigint not null references staff_account (staff_account_id),
    summary text not null,
    risk_level text not null check (risk_level in ('low', 'medium', 'high')),
    created_at text not null
);

create table follow_up (
    follow_up_id integer primary key autoincrement,
    case_id bigint not null references dispute_case (case_id),
    performed text not null check (performed in ('yes', 'partly', 'no')),
    satisfaction bigint not null check (satisfaction between 1 and 5),
    notes text not null,
    staff_account_id bigint not null references staff_account (staff_account_id),
    created_at text not null
);

create table case_number_counter (
    year bigint primary key,
    last_value bigint not null
);
