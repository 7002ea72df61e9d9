//! The store: one sqlx `Any` pool over PostgreSQL or SQLite, portable SQL, and the two
//! migration folders (`migrations/postgres`, `migrations/sqlite`) kept in lockstep.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite }
    }
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed (the database is left as it was): {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// Connects (creating the SQLite file if needed) without migrating.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let backend = Backend::of_url(url);
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Foreign keys are off by default in SQLite; WAL lets readers run beside the writer.
                        sqlx::query("pragma foreign_keys = on").execute(&mut *conn).await?;
                        sqlx::query("pragma journal_mode = wal").execute(&mut *conn).await?;
                        sqlx::query("pragma busy_timeout = 5000").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(DbError::Connect)?;
        Ok(Db { pool, backend })
    }

    /// Applies pending migrations; each runs in its own transaction.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub async fn connect_and_migrate(url: &str) -> Result<Db, DbError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// A transaction that will write. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads and then writes fails with SQLITE_BUSY
    /// (snapshot) instead of waiting when another connection wrote in between.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
    }

    /// (tables, columns) of the migrated schema as sorted `table.column:type:nullable` lines,
    /// types folded to a common vocabulary; used to check that both folders stay in lockstep.
    pub async fn schema_outline(&self) -> Result<Vec<String>, DbError> {
        let rows: Vec<(String, String, String, i64)> = match self.backend {
            Backend::Sqlite => {
                sqlx::query_as::<_, (String, String, String, i64)>(
                    // An SQLite primary key is never null in practice, as in PostgreSQL.
                    "select m.name, p.name, lower(p.type), (p.\"notnull\" = 0 and p.pk = 0) \
                     from sqlite_master m join pragma_table_info(m.name) p \
                     where m.type = 'table' and m.name not like 'sqlite_%' and m.name not like '_sqlx%'",
                )
                .fetch_all(&self.pool)
                .await?
            }
            Backend::Postgres => {
                sqlx::query_as::<_, (String, String, String, i64)>(
                    "select table_name::text, column_name::text, data_type::text, (case when is_nullable = 'YES' then 1 else 0 end)::int8 \
                     from information_schema.columns \
                     where table_schema = current_schema() and table_name not like '_sqlx%'",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut outline: Vec<String> = rows
            .into_iter()
            .map(|(t, c, ty, nullable)| format!("{t}.{c}:{}:{}", fold_type(&ty), if nullable != 0 { "null" } else { "not null" }))
            .collect();
        outline.sort();
        Ok(outline)
    }
}

fn fold_type(ty: &str) -> &'static str {
    match ty {
        "integer" | "bigint" | "int8" => "integer",
        "text" | "character varying" => "text",
        "boolean" => "boolean",
        "double precision" | "real" => "real",
        "bytea" | "blob" => "blob",
        _ => "other",
    }
}

/// A boolean column read portably: the `Any` driver cannot decode SQLite's BOOLEAN columns, so
/// booleans are selected as 0/1 integers (decode as `i64`) on both databases.
pub fn flag(column: &str) -> String {
    format!("(case when {column} then 1 else 0 end)")
}

/// The current time as the RFC 3339 UTC text stored in `created_at` columns.
pub fn now_text() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
