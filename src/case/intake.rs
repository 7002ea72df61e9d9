//! What a new case must contain, checked before anything is stored. Errors name the field (as a
//! JSON path into the request) so that a form or an import report can point at it.

use serde::Deserialize;

use crate::crypto::{valid_id_number, valid_phone};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct PartyInput {
    /// `applicant`, `respondent` or `third_party`.
    pub role: String,
    pub name: String,
    pub phone: Option<String>,
    pub id_number: Option<String>,
    #[serde(default)]
    pub address: String,
    /// Preferred language for the mediation, `zh` by default.
    pub language: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct CaseInput {
    pub title: String,
    pub summary: String,
    pub category_code: String,
    pub org_unit_id: i64,
    #[serde(default)]
    pub quick_track: bool,
    pub parties: Vec<PartyInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), message: message.into() }
}

pub const MAX_TITLE: usize = 200;
pub const MAX_SUMMARY: usize = 10_000;
pub const MAX_PARTIES: usize = 50;

fn length(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    let n = value.trim().chars().count();
    if n == 0 {
        Err(err(field, "must not be empty"))
    } else if n > max {
        Err(err(field, format!("at most {max} characters")))
    } else {
        Ok(())
    }
}

/// The first problem found, or `Ok`. `require_phone`: public intake must leave a way to reach the applicant.
pub fn validate(c: &CaseInput, require_phone: bool) -> Result<(), FieldError> {
    length("title", &c.title, MAX_TITLE)?;
    length("summary", &c.summary, MAX_SUMMARY)?;
    length("category_code", &c.category_code, 64)?;
    if c.parties.is_empty() || c.parties.len() > MAX_PARTIES {
        return Err(err("parties", format!("between 1 and {MAX_PARTIES} parties")));
    }
    if !c.parties.iter().any(|p| p.role == "applicant") {
        return Err(err("parties", "an applicant is required"));
    }
    for (i, p) in c.parties.iter().enumerate() {
        let f = |name: &str| format!("parties[{i}].{name}");
        if !matches!(p.role.as_str(), "applicant" | "respondent" | "third_party") {
            return Err(err(f("role"), "must be applicant, respondent or third_party"));
        }
        length(&f("name"), &p.name, 64)?;
        if p.address.chars().count() > 200 {
            return Err(err(f("address"), "at most 200 characters"));
        }
        match p.phone.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(phone) if !valid_phone(phone) => return Err(err(f("phone"), "must be an 11-digit mobile number")),
            None if require_phone && p.role == "applicant" => return Err(err(f("phone"), "the applicant's phone is required")),
            _ => {}
        }
        if let Some(id) = p.id_number.as_deref().filter(|s| !s.trim().is_empty())
            && !valid_id_number(id)
        {
            return Err(err(f("id_number"), "not a valid 18-character identity number"));
        }
        if let Some(lang) = &p.language
            && (lang.is_empty() || lang.len() > 8 || !lang.chars().all(|c| c.is_ascii_alphabetic() || c == '-'))
        {
            return Err(err(f("language"), "a language code such as zh or en"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> CaseInput {
        CaseInput {
            title: "房屋租赁押金纠纷".into(),
            summary: "房东拒绝退还押金".into(),
            category_code: "house_lease".into(),
            org_unit_id: 1,
            quick_track: false,
            parties: vec![PartyInput { role: "applicant".into(), name: "张三".into(), phone: Some("13812345678".into()), id_number: None, address: String::new(), language: None }],
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(validate(&good(), true), Ok(()));
        let mut c = good();
        c.title = "  ".into();
        assert_eq!(validate(&c, true).map_err(|e| e.field), Err("title".into()));
        let mut c = good();
        c.parties[0].phone = Some("123".into());
        assert_eq!(validate(&c, true).map_err(|e| e.field), Err("parties[0].phone".into()));
        let mut c = good();
        c.parties[0].phone = None;
        assert!(validate(&c, false).is_ok());
        assert_eq!(validate(&c, true).map_err(|e| e.field), Err("parties[0].phone".into()));
        let mut c = good();
        c.parties[0].role = "respondent".into();
        assert_eq!(validate(&c, true).map_err(|e| e.field), Err("parties".into()));
    }
}
