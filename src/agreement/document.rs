//! The agreement's content (人民调解法 art. 29: the parties' basic details; the main facts, the
//! matters in dispute and each party's responsibility; the agreed terms, how and by when they
//! are performed) and its rendering into one text whose hash is what everyone signs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Term {
    /// What is agreed (e.g. 被申请人退还押金人民币2500元).
    pub content: String,
    /// Who performs it (a party's name).
    pub performer: String,
    /// By when (YYYY-MM-DD).
    pub deadline: String,
    /// How (e.g. 银行转账).
    #[serde(default)]
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgreementFields {
    /// 纠纷主要事实.
    pub facts: String,
    /// 争议事项.
    pub disputes: String,
    /// 各方当事人的责任.
    pub responsibilities: String,
    /// 达成的协议内容、履行方式和期限.
    pub terms: Vec<Term>,
}

/// A party as printed in the agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyLine {
    pub role: String,
    pub name: String,
    /// Masked identity number (the full one stays encrypted in the case).
    pub id_number: Option<String>,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub case_number: String,
    pub organisation: String,
    pub mediator: String,
    pub version: i64,
}

/// A starting point for drafting: the usual wording of a kind of dispute, edited to the case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Template {
    pub code: &'static str,
    pub name: &'static str,
    /// Categories it suits (empty: any).
    pub categories: &'static [&'static str],
    pub facts: &'static str,
    pub disputes: &'static str,
    pub responsibilities: &'static str,
    pub term: &'static str,
    pub method: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        code: "general",
        name: "通用调解协议",
        categories: &[],
        facts: "申请人与被申请人因【事由】发生纠纷。经查，【主要事实】。",
        disputes: "双方就【争议事项】存在争议。",
        responsibilities: "【一方】应承担【责任】；【另一方】应【责任】。",
        term: "【履行人】于【日期】前向【对方】【给付/履行内容】",
        method: "银行转账",
    },
    Template {
        code: "house_lease_deposit",
        name: "房屋租赁押金纠纷",
        categories: &["house_lease"],
        facts: "申请人于【日期】租住被申请人位于【地址】的房屋，约定押金【金额】元。租期届满后，申请人已返还房屋，被申请人未退还押金。",
        disputes: "押金是否应当退还及退还数额；房屋损坏的赔偿。",
        responsibilities: "被申请人应退还押金；申请人对房屋【损坏情况】承担相应赔偿责任。",
        term: "被申请人退还申请人押金人民币【金额】元",
        method: "银行转账",
    },
    Template {
        code: "property_fee",
        name: "物业服务费纠纷",
        categories: &["property_services"],
        facts: "申请人为【小区】物业服务企业，被申请人为【房号】业主，自【日期】起未缴纳物业服务费。被申请人认为【服务问题】。",
        disputes: "欠缴物业服务费的数额及服务质量问题的处理。",
        responsibilities: "被申请人应补缴物业服务费；申请人应于【期限】内整改【服务问题】。",
        term: "被申请人补缴物业服务费人民币【金额】元",
        method: "物业服务中心缴纳",
    },
    Template {
        code: "wage_arrears",
        name: "劳动报酬纠纷",
        categories: &["labour_contract"],
        facts: "申请人于【日期】入职被申请人处，从事【岗位】工作，被申请人拖欠申请人【期间】工资。",
        disputes: "拖欠工资的数额及支付时间。",
        responsibilities: "被申请人应支付所欠劳动报酬。",
        term: "被申请人支付申请人劳动报酬人民币【金额】元",
        method: "银行转账",
    },
];

pub const MAX_TEXT: usize = 5_000;
pub const MAX_TERMS: usize = 30;

/// The first field that is missing or malformed, named as a JSON path.
pub fn validate(f: &AgreementFields) -> Result<(), (String, String)> {
    for (name, v) in [("facts", &f.facts), ("disputes", &f.disputes), ("responsibilities", &f.responsibilities)] {
        let n = v.trim().chars().count();
        if n == 0 || n > MAX_TEXT {
            return Err((name.into(), format!("1 to {MAX_TEXT} characters (人民调解法 art. 29 requires it)")));
        }
    }
    if f.terms.is_empty() || f.terms.len() > MAX_TERMS {
        return Err(("terms".into(), format!("between 1 and {MAX_TERMS} agreed terms")));
    }
    for (i, t) in f.terms.iter().enumerate() {
        if t.content.trim().is_empty() || t.content.chars().count() > MAX_TEXT {
            return Err((format!("terms[{i}].content"), "what is agreed, 1 to 5000 characters".into()));
        }
        if t.performer.trim().is_empty() || t.performer.chars().count() > 64 {
            return Err((format!("terms[{i}].performer"), "who performs it".into()));
        }
        if !valid_date(&t.deadline) {
            return Err((format!("terms[{i}].deadline"), "a date such as 2026-12-31".into()));
        }
        if t.method.chars().count() > 200 {
            return Err((format!("terms[{i}].method"), "at most 200 characters".into()));
        }
    }
    Ok(())
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && s.split('-').all(|p| p.chars().all(|c| c.is_ascii_digit())) && {
        let m: u32 = s[5..7].parse().unwrap_or(0);
        let d: u32 = s[8..10].parse().unwrap_or(0);
        (1..=12).contains(&m) && (1..=31).contains(&d)
    }
}

fn role_zh(role: &str) -> &'static str {
    match role {
        "applicant" => "申请人",
        "respondent" => "被申请人",
        _ => "第三人",
    }
}

/// The document's text. Deterministic: the same fields, parties and header give the same bytes,
/// so the hash a signer saw is the hash that is checked.
pub fn render(h: &Header, parties: &[PartyLine], f: &AgreementFields) -> String {
    let mut out = String::new();
    out.push_str("人民调解协议书\n");
    out.push_str(&format!("编号：{}（第{}版）\n\n", h.case_number, h.version));
    out.push_str("一、当事人基本情况\n");
    for p in parties {
        out.push_str(&format!("{}：{}", role_zh(&p.role), p.name));
        if let Some(id) = &p.id_number {
            out.push_str(&format!("，身份证号：{id}"));
        }
        if !p.address.is_empty() {
            out.push_str(&format!("，住址：{}", p.address));
        }
        out.push('\n');
    }
    out.push_str(&format!("\n二、纠纷主要事实\n{}\n\n三、争议事项\n{}\n\n四、各方当事人的责任\n{}\n\n五、经调解，当事人自愿达成如下协议\n", f.facts.trim(), f.disputes.trim(), f.responsibilities.trim()));
    for (i, t) in f.terms.iter().enumerate() {
        out.push_str(&format!("{}. {}（履行人：{}；履行期限：{}前", i + 1, t.content.trim(), t.performer.trim(), t.deadline));
        if !t.method.trim().is_empty() {
            out.push_str(&format!("；履行方式：{}", t.method.trim()));
        }
        out.push_str("）\n");
    }
    out.push_str("\n六、本协议经各方当事人签名、调解员签名并加盖人民调解委员会印章后生效。当事人应当按照约定履行；\n");
    out.push_str("本协议生效之日起三十日内，双方当事人可以共同向人民法院申请司法确认。\n\n");
    out.push_str(&format!("调解组织：{}\n调解员：{}\n", h.organisation, h.mediator));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> AgreementFields {
        AgreementFields {
            facts: "申请人租住被申请人房屋，租期届满后被申请人未退还押金。".into(),
            disputes: "押金是否应当退还及数额。".into(),
            responsibilities: "被申请人应退还押金，申请人应赔偿墙面损坏。".into(),
            terms: vec![Term { content: "被申请人退还押金人民币2500元".into(), performer: "李四".into(), deadline: "2026-12-31".into(), method: "银行转账".into() }],
        }
    }

    #[test]
    fn renders_every_article_29_element_deterministically() {
        let h = Header { case_number: "JF2026-000001".into(), organisation: "八宝山街道人民调解委员会".into(), mediator: "王调解".into(), version: 2 };
        let parties = vec![
            PartyLine { role: "applicant".into(), name: "张三".into(), id_number: Some("110***********002X".into()), address: "玉泉西里".into() },
            PartyLine { role: "respondent".into(), name: "李四".into(), id_number: None, address: String::new() },
        ];
        let text = render(&h, &parties, &fields());
        for needle in ["申请人：张三", "被申请人：李四", "纠纷主要事实", "争议事项", "各方当事人的责任", "退还押金人民币2500元", "2026-12-31前", "银行转账", "第2版"] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
        assert_eq!(text, render(&h, &parties, &fields()));
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(validate(&fields()), Ok(()));
        let mut f = fields();
        f.terms[0].deadline = "31/12/2026".into();
        assert_eq!(validate(&f).map_err(|e| e.0), Err("terms[0].deadline".into()));
        let mut f = fields();
        f.facts = " ".into();
        assert_eq!(validate(&f).map_err(|e| e.0), Err("facts".into()));
        let mut f = fields();
        f.terms.clear();
        assert_eq!(validate(&f).map_err(|e| e.0), Err("terms".into()));
    }
}
