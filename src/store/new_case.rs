//! Creating a case, whatever the channel (public form, QR entry, staff registration, import):
//! idempotent on an external id, likely duplicates flagged, parties' personal numbers encrypted,
//! the first entry of the event chain written in the same transaction.

use serde::Serialize;

use crate::case::CaseStatus;
use crate::case::intake::{CaseInput, FieldError};
use crate::crypto::FieldCipher;
use crate::db::{Db, DbError, now_text};
use crate::store::cases;

pub struct Origin {
    /// `web_form`, `qr`, `staff`, or the import source (`hotline_12345`, `petition`, `prepaid_supervision`, `court`).
    pub channel: String,
    pub external_id: Option<String>,
    pub actor: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub case_id: i64,
    pub case_number: String,
    /// An open case of the same applicant and category that this one probably repeats.
    pub duplicate_of: Option<i64>,
    /// True when the external id was imported before: nothing new was created.
    pub existing: bool,
}

async fn existing(db: &Db, source: &str, external_id: &str) -> Result<Option<Created>, DbError> {
    let row: Option<(i64, String, Option<i64>)> = sqlx::query_as("select case_id, case_number, duplicate_of from dispute_case where external_source = $1 and external_id = $2")
        .bind(source)
        .bind(external_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|(case_id, case_number, duplicate_of)| Created { case_id, case_number, duplicate_of, existing: true }))
}

pub async fn create(db: &Db, cipher: &FieldCipher, input: &CaseInput, origin: &Origin) -> Result<Result<Created, FieldError>, DbError> {
    if let Some(ext) = &origin.external_id
        && let Some(found) = existing(db, &origin.channel, ext).await?
    {
        return Ok(Ok(found));
    }
    if !crate::store::pool::category_active(db, input.category_code.trim()).await? {
        return Ok(Err(FieldError { field: "category_code".into(), message: format!("unknown or retired category {}", input.category_code.trim()) }));
    }
    let unit: Option<(i64,)> = sqlx::query_as("select org_unit_id from org_unit where org_unit_id = $1").bind(input.org_unit_id).fetch_optional(&db.pool).await?;
    if unit.is_none() {
        return Ok(Err(FieldError { field: "org_unit_id".into(), message: format!("no org unit {}", input.org_unit_id) }));
    }
    let indexes: Vec<(Option<String>, Option<String>)> = input
        .parties
        .iter()
        .map(|p| {
            (
                p.phone.as_deref().filter(|s| !s.trim().is_empty()).map(|v| cipher.blind_index("phone", v)),
                p.id_number.as_deref().filter(|s| !s.trim().is_empty()).map(|v| cipher.blind_index("id_number", v)),
            )
        })
        .collect();
    let duplicate_of = find_duplicate(db, input, &indexes).await?;

    let mut tx = db.begin().await?;
    let number = cases::next_case_number(&mut tx).await?;
    let now = now_text();
    let status = CaseStatus::Registered;
    let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
        "insert into dispute_case (case_number, title, summary, category_code, org_unit_id, status, quick_track, channel, external_source, external_id, \
         duplicate_of, stage_due_at, escalation_level, reopen_count, version, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0, 1, $13, $13) returning case_id",
    )
    .bind(&number)
    .bind(input.title.trim())
    .bind(input.summary.trim())
    .bind(input.category_code.trim())
    .bind(input.org_unit_id)
    .bind(status.as_str())
    .bind(input.quick_track)
    .bind(&origin.channel)
    .bind(origin.external_id.as_ref().map(|_| origin.channel.clone()))
    .bind(&origin.external_id)
    .bind(duplicate_of)
    .bind(cases::stage_due(status, input.quick_track))
    .bind(&now)
    .fetch_one(&mut *tx)
    .await;
    let case_id = match inserted {
        Ok((id,)) => id,
        // Two imports of the same external id at once: the other one won; answer with its case.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() && origin.external_id.is_some() => {
            drop(tx);
            let ext = origin.external_id.as_deref().unwrap_or_default();
            return match existing(db, &origin.channel, ext).await? {
                Some(found) => Ok(Ok(found)),
                None => Err(DbError::Query(sqlx::Error::Database(e))),
            };
        }
        Err(e) => return Err(e.into()),
    };
    for (p, (phone_index, id_index)) in input.parties.iter().zip(&indexes) {
        let phone = p.phone.as_deref().filter(|s| !s.trim().is_empty()).map(|v| cipher.encrypt(&crate::crypto::normalise(v)));
        let id_number = p.id_number.as_deref().filter(|s| !s.trim().is_empty()).map(|v| cipher.encrypt(&crate::crypto::normalise(v)));
        sqlx::query(
            "insert into party (case_id, role, name, phone_enc, phone_index, id_number_enc, id_number_index, address, language, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(case_id)
        .bind(&p.role)
        .bind(p.name.trim())
        .bind(phone)
        .bind(phone_index)
        .bind(id_number)
        .bind(id_index)
        .bind(p.address.trim())
        .bind(p.language.as_deref().unwrap_or("zh"))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    let payload = serde_json::json!({
        "channel": origin.channel,
        "external_id": origin.external_id,
        "category_code": input.category_code.trim(),
        "org_unit_id": input.org_unit_id,
        "quick_track": input.quick_track,
        "parties": input.parties.len(),
        "duplicate_of": duplicate_of,
    });
    cases::append_event(&mut tx, case_id, "registered", &origin.actor, &payload).await?;
    crate::store::search::index_case(&mut tx, case_id, input.title.trim(), input.summary.trim()).await?;
    tx.commit().await?;
    Ok(Ok(Created { case_id, case_number: number, duplicate_of, existing: false }))
}

/// An open case in the same category with a party of the same phone or identity number.
async fn find_duplicate(db: &Db, input: &CaseInput, indexes: &[(Option<String>, Option<String>)]) -> Result<Option<i64>, DbError> {
    let open = CaseStatus::open_sql_list();
    for (phone, id) in indexes {
        for (column, value) in [("phone_index", phone), ("id_number_index", id)] {
            let Some(value) = value else { continue };
            let sql = format!(
                "select c.case_id from dispute_case c join party p on p.case_id = c.case_id \
                 where p.{column} = $1 and c.category_code = $2 and c.status in ({open}) order by c.case_id limit 1"
            );
            let found: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(value).bind(input.category_code.trim()).fetch_optional(&db.pool).await?;
            if let Some((id,)) = found {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}
