//! The case text index: character bigrams of titles and summaries in `case_term`, so that a
//! text search looks up a few index entries instead of scanning every case (a full scan of
//! 100 000 cases took 250 ms on SQLite per search). Bigrams suit Chinese, which has no spaces;
//! they work for Latin text and digits too. The index narrows, `LIKE` confirms.

use sqlx::Any;

use crate::db::{Db, DbError};
use crate::store::cases::{Bind, Where};

/// At most this many of a query's bigrams are looked up (each narrows the candidates further).
const MAX_QUERY_TERMS: usize = 6;
/// Rows per multi-row insert.
const INSERT_CHUNK: usize = 400;

/// The distinct index terms of a text: lower-cased bigrams within runs of letters and digits;
/// a run of one character is a term by itself.
pub fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lower = text.to_lowercase();
    for run in lower.split(|c: char| !c.is_alphanumeric()).filter(|r| !r.is_empty()) {
        let chars: Vec<char> = run.chars().collect();
        if chars.len() == 1 {
            out.push(run.to_string());
        }
        for pair in chars.windows(2) {
            out.push(pair.iter().collect());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Replaces a case's terms (call inside the transaction that writes its title or summary).
pub async fn index_case(tx: &mut sqlx::Transaction<'static, Any>, case_id: i64, title: &str, summary: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from case_term where case_id = $1").bind(case_id).execute(&mut **tx).await?;
    let mut all = terms(title);
    all.extend(terms(summary));
    all.sort_unstable();
    all.dedup();
    for chunk in all.chunks(INSERT_CHUNK) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${})", i + 2)).collect();
        let sql = format!("insert into case_term (case_id, term) values {}", values.join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(case_id);
        for t in chunk {
            q = q.bind(t.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Indexes the cases that have no terms yet (those written before the index existed). Returns
/// how many were indexed.
pub async fn backfill(db: &Db) -> Result<usize, DbError> {
    let mut done = 0;
    loop {
        let batch: Vec<(i64, String, String)> = sqlx::query_as(
            "select case_id, title, summary from dispute_case c \
             where not exists (select 1 from case_term t where t.case_id = c.case_id) order by case_id limit 500",
        )
        .fetch_all(&db.pool)
        .await?;
        if batch.is_empty() {
            return Ok(done);
        }
        let mut tx = db.begin().await?;
        for (case_id, title, summary) in &batch {
            index_case(&mut tx, *case_id, title, summary).await?;
        }
        tx.commit().await?;
        done += batch.len();
        // Cases with no letters or digits at all get no terms; stop rather than loop on them.
        if batch.iter().all(|(_, t, s)| terms(t).is_empty() && terms(s).is_empty()) {
            return Ok(done);
        }
    }
}

/// A search's candidate cases from the index: `None` when the text has no bigram to look up
/// (LIKE alone decides), else the cases having all of its bigrams (or [`Candidates::TooMany`]).
pub async fn candidates(db: &Db, text: &str) -> Result<Option<Candidates>, DbError> {
    let query_terms = query_terms(text);
    if query_terms.is_empty() {
        return Ok(None);
    }
    // Looked up first, apart from the case query: the planner cannot know how few cases the
    // intersection leaves, and given the lookups inside the query PostgreSQL would rather scan
    // every case with LIKE.
    let lookups = (1..=query_terms.len()).map(|i| format!("select case_id from case_term where term = ${i}")).collect::<Vec<_>>().join(" intersect ");
    let sql = format!("select case_id from ({lookups}) hits limit {}", MAX_CANDIDATES + 1);
    let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql));
    for t in &query_terms {
        q = q.bind(t.clone());
    }
    let ids: Vec<i64> = q.fetch_all(&db.pool).await?.into_iter().map(|(id,)| id).collect();
    Ok(Some(if ids.len() > MAX_CANDIDATES { Candidates::TooMany } else { Candidates::Ids(ids) }))
}

/// What the index says about a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates {
    /// Only these cases can match.
    Ids(Vec<i64>),
    /// More than [`MAX_CANDIDATES`]: the lookups go into the case query itself.
    TooMany,
}

/// Candidate lists up to this size are given to the case query as ids.
pub const MAX_CANDIDATES: usize = 2000;

fn query_terms(text: &str) -> Vec<String> {
    let mut query_terms = terms(text);
    // Single characters only find cases through LIKE (a lone character is indexed only where it
    // stands alone); bigrams are precise.
    query_terms.retain(|t| t.chars().count() == 2);
    query_terms.truncate(MAX_QUERY_TERMS);
    query_terms
}

/// Narrows a case query (over `dispute_case c`) to cases whose title or summary contains
/// `text`: the index's candidates (see [`candidates`]), then `LIKE` on them.
pub fn restrict(w: &mut Where, text: &str, candidates: Option<&Candidates>) {
    let pattern = like_pattern(&text.to_lowercase());
    match candidates {
        None => {}
        Some(Candidates::Ids(ids)) if ids.is_empty() => w.add_raw("1 = 0".into()),
        // Our own integers from the index, never text from the request.
        Some(Candidates::Ids(ids)) => w.add_raw(format!("c.case_id in ({})", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","))),
        Some(Candidates::TooMany) => {
            let terms = query_terms(text);
            let lookups = vec!["select case_id from case_term where term = ?"; terms.len()].join(" intersect ");
            w.add_many(&format!("c.case_id in ({lookups})"), terms.into_iter().map(Bind::Text).collect());
        }
    }
    w.add_many("(lower(c.title) like ? escape '\\' or lower(c.summary) like ? escape '\\')", vec![Bind::Text(pattern.clone()), Bind::Text(pattern)]);
}

/// `%text%` (trimmed), with LIKE's wildcards typed by the user taken literally.
pub fn like_pattern(text: &str) -> String {
    let escaped = text.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigrams_of_chinese_latin_and_digits() {
        assert_eq!(terms("押金纠纷"), vec!["押金", "纠纷", "金纠"]);
        assert_eq!(terms("第12号"), vec!["12", "2号", "第1"]);
        // Punctuation splits runs; case folds; a lone character stands as a term.
        assert_eq!(terms("Wage, 欠"), vec!["ag", "ge", "wa", "欠"]);
        assert!(terms("，。 ").is_empty());
        assert_eq!(terms("aaaa"), vec!["aa"]);
    }

    #[test]
    fn a_search_uses_the_index_and_confirms_with_like() {
        let mut w = Where::default();
        restrict(&mut w, "第12号", Some(&Candidates::TooMany));
        let sql = w.sql();
        assert_eq!(sql.matches("select case_id from case_term where term = ").count(), 3, "{sql}");
        assert!(sql.contains("like"), "{sql}");
        assert_eq!(w.binds.len(), 5);
        let mut w = Where::default();
        restrict(&mut w, "第12号", Some(&Candidates::Ids(vec![7, 9])));
        assert!(w.sql().contains("c.case_id in (7,9)") && !w.sql().contains("case_term"), "{}", w.sql());
        let mut w = Where::default();
        restrict(&mut w, "第12号", Some(&Candidates::Ids(vec![])));
        assert!(w.sql().contains("1 = 0"));
        // One character: no bigram, LIKE alone.
        assert!(query_terms("押").is_empty());
        let mut w = Where::default();
        restrict(&mut w, "押", None);
        assert!(!w.sql().contains("case_term") && w.sql().contains("like"));
        assert_eq!(like_pattern("50%_off"), "%50\\%\\_off%");
    }
}
