//! The mediator resource pool as the matching sees it: each mediator with their organisation,
//! its org unit, and their current load (open cases assigned).

use crate::case::CaseStatus;
use crate::case::matching::Candidate;
use crate::db::{Db, DbError, flag};

pub async fn candidates(db: &Db) -> Result<Vec<Candidate>, DbError> {
    let sql = format!(
        "select m.mediator_id, m.name, m.kind, o.mediation_org_id, o.name, o.org_unit_id, m.specialties, m.languages, {}, m.max_load, \
         (select count(*) from dispute_case c where c.mediator_id = m.mediator_id and c.status in ({})) \
         from mediator m join mediation_org o on o.mediation_org_id = m.mediation_org_id order by m.mediator_id",
        flag("m.available"),
        CaseStatus::open_sql_list()
    );
    #[allow(clippy::type_complexity)] // mirrors the select list above
    let rows: Vec<(i64, String, String, i64, String, i64, String, String, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?;
    let split = |s: &str| s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
    Ok(rows
        .into_iter()
        .map(|r| Candidate {
            mediator_id: r.0,
            name: r.1,
            kind: r.2,
            mediation_org_id: r.3,
            mediation_org_name: r.4,
            org_unit_id: r.5,
            specialties: split(&r.6),
            languages: split(&r.7),
            available: r.8 != 0,
            max_load: r.9,
            load: r.10,
        })
        .collect())
}

/// Whether `code` names a category that new cases may use.
pub async fn category_active(db: &Db, code: &str) -> Result<bool, DbError> {
    let row: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("select {} from category where code = $1", flag("active")))).bind(code).fetch_optional(&db.pool).await?;
    Ok(row.is_some_and(|(a,)| a != 0))
}
