-- The foundation schema. Kept in lockstep with migrations/postgres/0001_foundation.sql
-- (tests/schema_lockstep.rs compares the two). Timestamps are RFC 3339 UTC text so the
-- same portable queries read them on both databases.
create table org_unit (
    org_unit_id integer primary key autoincrement,
    parent_id bigint references org_unit (org_unit_id),
    level text not null check (level in ('district', 'street', 'community')),
    name text not null,
    code text not null unique,
    created_at text not null
);

create table mediation_org (
    mediation_org_id integer primary key autoincrement,
    org_unit_id bigint not null references org_unit (org_unit_id),
    kind text not null check (kind in ('people', 'administrative', 'industry', 'judicial')),
    name text not null unique,
    created_at text not null
);

create table mediator (
    mediator_id integer primary key autoincrement,
    mediation_org_id bigint not null references mediation_org (mediation_org_id),
    name text not null,
    specialties text not null,
    languages text not null,
    available boolean not null,
    created_at text not null
);

create table staff_account (
    staff_account_id integer primary key autoincrement,
    username text not null unique,
    password_hash text not null,
    role text not null,
    org_unit_id bigint references org_unit (org_unit_id),
    must_change_password boolean not null,
    created_at text not null
);

create table system_setting (
    setting_key text primary key,
    setting_value text not null
);
