-- Text search over case titles and summaries without scanning every case: each case's
-- distinct character bigrams (lower-cased; a lone character is its own term), kept by the
-- application whenever a title or summary is written (src/store/search.rs). A search looks up
-- the bigrams of its text and confirms the match with LIKE.
create table case_term (
    case_id bigint not null references dispute_case (case_id) on delete cascade,
    term text not null
);
create index case_term_lookup on case_term (term, case_id);
create index case_term_case on case_term (case_id);
