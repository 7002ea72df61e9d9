//! The two migration folders describe one schema, and a failed migration changes nothing.

mod common;

use jiefen::db::Db;
use sqlx::migrate::Migrator;

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Db::connect_and_migrate(&common::sqlite_url(dir.path())).await.expect("sqlite migrates");
    let sqlite_outline = sqlite.schema_outline().await.expect("sqlite outline");
    assert!(sqlite_outline.iter().any(|l| l == "org_unit.code:text:not null"), "{sqlite_outline:#?}");
    let Some(url) = common::fresh_pg_database().await else { return };
    let pg = Db::connect_and_migrate(&url).await.expect("postgres migrates");
    let pg_outline = pg.schema_outline().await.expect("postgres outline");
    assert_eq!(sqlite_outline, pg_outline, "migrations/sqlite and migrations/postgres drifted apart");
    // Migrating again is a no-op.
    pg.migrate().await.expect("idempotent");
}

/// A migration folder whose second step creates a table and then fails.
fn broken_migrations(dir: &std::path::Path) {
    std::fs::write(dir.join("0001_ok.sql"), "create table kept (kept_id bigint primary key);").expect("write");
    std::fs::write(
        dir.join("0002_broken.sql"),
        "create table half_done (half_done_id bigint primary key);\ninsert into no_such_table values (1);",
    )
    .expect("write");
}

async fn table_exists(db: &Db, name: &str) -> bool {
    let sql = match db.backend {
        jiefen::db::Backend::Sqlite => "select count(*) from sqlite_master where type = 'table' and name = $1",
        jiefen::db::Backend::Postgres => "select count(*) from information_schema.tables where table_name = $1",
    };
    let (n,): (i64,) = sqlx::query_as(sql).bind(name).fetch_one(&db.pool).await.expect("query");
    n > 0
}

async fn check_failed_migration_leaves_no_trace(url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    broken_migrations(dir.path());
    let db = Db::connect(url).await.expect("connect");
    let migrator = Migrator::new(dir.path()).await.expect("migrator");
    assert!(migrator.run(&db.pool).await.is_err(), "the broken migration must fail");
    assert!(table_exists(&db, "kept").await, "the good migration stays applied");
    assert!(!table_exists(&db, "half_done").await, "the failed migration was rolled back");
}

#[tokio::test]
async fn failed_migration_is_rolled_back_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    check_failed_migration_leaves_no_trace(&common::sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn failed_migration_is_rolled_back_on_postgres() {
    let Some(url) = common::fresh_pg_database().await else { return };
    check_failed_migration_leaves_no_trace(&url).await;
}
