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

/// Narrows a case query (over `dispute_case c`) to cases whose title or summary contains
/// `text`: the index for its bigrams, then `LIKE` on the candidates.
pub fn restrict(w: &mut Where, text: &str) {
    let pattern = like_pattern(&text.to_lowercase());
    let mut query_terms = terms(text);
    // Single characters only find cases through LIKE (a lone character is indexed only where it
    // stands alone); bigrams are precise.
    query_terms.retain(|t| t.chars().count() == 2);
    query_terms.truncate(MAX_QUERY_TERMS);
    if !query_terms.is_empty() {
        let lookups = vec!["select case_id from case_term where term = ?"; query_terms.len()].join(" intersect ");
        w.add_many(&format!("c.case_id in ({lookups})"), query_terms.into_iter().map(Bind::Text).collect());
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
        restrict(&mut w, "第12号");
        let sql = w.sql();
        assert_eq!(sql.matches("select case_id from case_term where term = ").count(), 3, "{sql}");
        assert!(sql.contains("like"), "{sql}");
        assert_eq!(w.binds.len(), 5);
        // One character: no bigram, LIKE alone.
        let mut w = Where::default();
        restrict(&mut w, "押");
        assert!(!w.sql().contains("case_term"));
        assert_eq!(like_pattern("50%_off"), "%50\\%\\_off%");
    }
}
