-- Packages sent to the court (judicial confirmation, litigation filing), through the job queue
-- as an outbox, and the court's callbacks, each applied once.
-- Kept in lockstep with the other folder (tests/schema_lockstep.rs compares the two).
create table court_package (
    package_id text primary key,
    case_id bigint not null references dispute_case (case_id),
    kind text not null check (kind in ('confirmation', 'filing')),
    court_id text not null,
    status text not null,
    court_ref text,
    payload text not null,
    reason text,
    missing text,
    document text,
    created_at text not null,
    updated_at text not null
);
create index court_package_case on court_package (case_id);

create table court_callback (
    event_id text primary key,
    package_id text not null references court_package (package_id),
    status text not null,
    body text not null,
    received_at text not null
);
