-- Group disputes (群体性纠纷): many applicants against one respondent (the gym case), handled
-- as one case per member under a group, with one agreement template and bulk steps.
-- Kept in lockstep with the other folder (tests/schema_lockstep.rs compares the two).
create table dispute_group (
    group_id integer primary key autoincrement,
    name text not null,
    summary text not null,
    category_code text not null references category (code),
    org_unit_id bigint not null references org_unit (org_unit_id),
    respondent_name text not null,
    respondent_phone_enc text,
    respondent_address text not null,
    created_at text not null
);

alter table dispute_case add column group_id bigint references dispute_group (group_id);
create index dispute_case_group on dispute_case (group_id);
