//! First-start work on an empty database: the one-time admin account and the demo organisation.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::Argon2;

use crate::db::{Db, DbError, now_text};

/// Creates the `admin` account when there is no staff account yet; returns its one-time password.
pub async fn ensure_admin(db: &Db) -> Result<Option<String>, DbError> {
    let (count,): (i64,) = sqlx::query_as("select count(*) from staff_account").fetch_one(&db.pool).await?;
    if count > 0 {
        return Ok(None);
    }
    let password = random_password();
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| DbError::Query(sqlx::Error::Protocol(format!("password hashing failed: {e}"))))?
        .to_string();
    sqlx::query(
        "insert into staff_account (username, password_hash, role, org_unit_id, must_change_password, created_at) \
         values ($1, $2, $3, null, $4, $5) on conflict (username) do nothing",
    )
    .bind("admin")
    .bind(hash)
    .bind("system_admin")
    .bind(true)
    .bind(now_text())
    .execute(&db.pool)
    .await?;
    Ok(Some(password))
}

fn random_password() -> String {
    use rand::Rng;
    // No look-alike characters: the password is read off a terminal and typed by hand.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

struct DemoUnit {
    code: &'static str,
    parent: Option<&'static str>,
    level: &'static str,
    name: &'static str,
}

const DEMO_UNITS: &[DemoUnit] = &[
    DemoUnit { code: "sjs", parent: None, level: "district", name: "石景山区" },
    DemoUnit { code: "sjs-bbs", parent: Some("sjs"), level: "street", name: "八宝山街道" },
    DemoUnit { code: "sjs-lg", parent: Some("sjs"), level: "street", name: "鲁谷街道" },
    DemoUnit { code: "sjs-gc", parent: Some("sjs"), level: "street", name: "古城街道" },
    DemoUnit { code: "sjs-bbs-yq", parent: Some("sjs-bbs"), level: "community", name: "玉泉西里社区" },
    DemoUnit { code: "sjs-bbs-lb", parent: Some("sjs-bbs"), level: "community", name: "鲁谷北社区" },
    DemoUnit { code: "sjs-lg-qh", parent: Some("sjs-lg"), level: "community", name: "七星园社区" },
    DemoUnit { code: "sjs-lg-xh", parent: Some("sjs-lg"), level: "community", name: "新岚大厦社区" },
    DemoUnit { code: "sjs-gc-nl", parent: Some("sjs-gc"), level: "community", name: "南路东社区" },
    DemoUnit { code: "sjs-gc-xl", parent: Some("sjs-gc"), level: "community", name: "西里社区" },
];

/// (org unit code, kind, name)
const DEMO_ORGS: &[(&str, &str, &str)] = &[
    ("sjs", "people", "石景山区人民调解委员会"),
    ("sjs", "administrative", "石景山区市场监管行政调解室"),
    ("sjs", "industry", "石景山区物业纠纷行业调解委员会"),
    ("sjs", "judicial", "石景山区人民法院诉前调解中心"),
    ("sjs-bbs", "people", "八宝山街道人民调解委员会（老街坊调解室）"),
    ("sjs-lg", "people", "鲁谷街道人民调解委员会（暖情调解室）"),
];

/// (org name, mediator name, specialties, languages)
const DEMO_MEDIATORS: &[(&str, &str, &str, &str)] = &[
    ("石景山区人民调解委员会", "王秀兰", "neighbour_relations,house_lease", "zh"),
    ("石景山区人民调解委员会", "李建国", "labour_contract,financial_loan", "zh,en"),
    ("石景山区物业纠纷行业调解委员会", "赵敏", "property_services", "zh"),
    ("石景山区市场监管行政调解室", "陈晨", "online_shopping,tourism_contract", "zh,en"),
    ("八宝山街道人民调解委员会（老街坊调解室）", "刘大妈", "neighbour_relations", "zh"),
    ("鲁谷街道人民调解委员会（暖情调解室）", "孙涛", "house_lease,property_services", "zh"),
];

/// Seeds the demo organisation into an empty database, in one transaction. Returns whether it did.
pub async fn seed_demo(db: &Db) -> Result<bool, DbError> {
    let (count,): (i64,) = sqlx::query_as("select count(*) from org_unit").fetch_one(&db.pool).await?;
    if count > 0 {
        return Ok(false);
    }
    let mut tx = db.begin().await?;
    let now = now_text();
    for u in DEMO_UNITS {
        let parent: Option<i64> = match u.parent {
            Some(code) => Some(sqlx::query_as::<_, (i64,)>("select org_unit_id from org_unit where code = $1").bind(code).fetch_one(&mut *tx).await?.0),
            None => None,
        };
        sqlx::query("insert into org_unit (parent_id, level, name, code, created_at) values ($1, $2, $3, $4, $5)")
            .bind(parent)
            .bind(u.level)
            .bind(u.name)
            .bind(u.code)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
    }
    for (unit, kind, name) in DEMO_ORGS {
        sqlx::query(
            "insert into mediation_org (org_unit_id, kind, name, created_at) \
             select org_unit_id, $1, $2, $3 from org_unit where code = $4",
        )
        .bind(*kind)
        .bind(*name)
        .bind(&now)
        .bind(*unit)
        .execute(&mut *tx)
        .await?;
    }
    for (org, name, specialties, languages) in DEMO_MEDIATORS {
        sqlx::query(
            "insert into mediator (mediation_org_id, name, specialties, languages, available, created_at) \
             select mediation_org_id, $1, $2, $3, $4, $5 from mediation_org where name = $6",
        )
        .bind(*name)
        .bind(*specialties)
        .bind(*languages)
        .bind(true)
        .bind(&now)
        .bind(*org)
        .execute(&mut *tx)
        .await?;
    }
    for (org, name, description) in DEMO_NAMED_ROOMS {
        sqlx::query(
            "insert into named_room (mediation_org_id, name, description, created_at) \
             select mediation_org_id, $1, $2, $3 from mediation_org where name = $4",
        )
        .bind(*name)
        .bind(*description)
        .bind(&now)
        .bind(*org)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// (org name, room name, description)
const DEMO_NAMED_ROOMS: &[(&str, &str, &str)] = &[
    ("八宝山街道人民调解委员会（老街坊调解室）", "老街坊", "由社区老街坊、老党员参与的邻里纠纷调解室"),
    ("鲁谷街道人民调解委员会（暖情调解室）", "暖情", "婚姻家庭与心理疏导相结合的调解室"),
];

/// (code, 中文, English, epidemic zone)
pub const CATEGORIES: &[(&str, &str, &str, bool)] = &[
    ("house_lease", "房屋租赁", "House leasing", true),
    ("labour_contract", "劳动合同", "Labour contract", true),
    ("travel_ticket", "客运票务", "Travel tickets", true),
    ("goods_transport", "货物运输", "Goods transport", true),
    ("tourism_contract", "旅游合同", "Tourism contract", true),
    ("financial_loan", "金融借款", "Financial loan", true),
    ("insurance", "保险", "Insurance", true),
    ("online_shopping", "网络购物", "Online shopping", true),
    ("property_services", "物业服务", "Property services", true),
    ("neighbour_relations", "邻里关系", "Neighbour relations", true),
    ("marriage_family", "婚姻家庭", "Marriage and family", false),
    ("inheritance", "继承", "Inheritance", false),
    ("property_title", "物权", "Title to property", false),
    ("prepaid_consumption", "预付式消费", "Prepaid consumption", false),
    ("private_lending", "民间借贷", "Private lending", false),
    ("traffic_accident", "交通事故", "Traffic accident", false),
    ("medical", "医疗纠纷", "Medical dispute", false),
    ("other", "其他", "Other", false),
];

/// Inserts the built-in categories that are missing; an admin's edits and retirements stay.
pub async fn ensure_categories(db: &Db) -> Result<(), DbError> {
    let now = now_text();
    for (code, zh, en, epidemic) in CATEGORIES {
        sqlx::query("insert into category (code, name_zh, name_en, epidemic_zone, active, created_at) values ($1, $2, $3, $4, $5, $6) on conflict (code) do nothing")
            .bind(*code)
            .bind(*zh)
            .bind(*en)
            .bind(*epidemic)
            .bind(true)
            .bind(&now)
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}
