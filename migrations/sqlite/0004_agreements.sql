-- Mediation agreements (人民调解法 art. 29): versioned text, signatures against a version's hash,
-- the organisation's seal (an Ed25519 signature) once every signer has signed.
-- Kept in lockstep with the other folder (tests/schema_lockstep.rs compares the two).
create table agreement (
    agreement_id integer primary key autoincrement,
    case_id bigint not null references dispute_case (case_id),
    status text not null check (status in ('signing', 'effective', 'void')),
    current_version bigint not null,
    effective_at text,
    seal text,
    created_at text not null,
    updated_at text not null
);
create index agreement_case on agreement (case_id);

create table agreement_version (
    agreement_version_id integer primary key autoincrement,
    agreement_id bigint not null references agreement (agreement_id),
    version bigint not null,
    fields text not null,
    body text not null,
    sha256 text not null,
    sm3 text not null,
    created_by bigint references staff_account (staff_account_id),
    created_at text not null,
    unique (agreement_id, version)
);

create table agreement_signature (
    agreement_signature_id integer primary key autoincrement,
    agreement_id bigint not null references agreement (agreement_id),
    version bigint not null,
    signer text not null,
    signer_name text not null,
    party_id bigint references party (party_id),
    staff_account_id bigint references staff_account (staff_account_id),
    document_sha256 text not null,
    signature_image text not null,
    ip text not null,
    user_agent text not null,
    signed_at text not null,
    unique (agreement_id, version, signer)
);

create table signing_code (
    signing_code_id integer primary key autoincrement,
    agreement_id bigint not null references agreement (agreement_id),
    party_id bigint not null references party (party_id),
    code_hash text not null,
    attempts bigint not null,
    expires_at text not null,
    used_at text,
    created_at text not null
);
