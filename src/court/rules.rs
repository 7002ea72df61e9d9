//! The law's rules for the court path, as pure functions: whether a judicial confirmation may be
//! applied for (人民调解法 art. 33; 民事诉讼法 arts. 205–206; SPC interpretation arts. 351–358),
//! which courts may take it, and whether a litigation filing is complete (民事诉讼法 art. 124).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The window for a joint application, from the day the agreement takes effect.
pub const CONFIRMATION_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// More than 30 days since the agreement took effect.
    WindowPassed,
    /// The agreement is not (yet) in effect.
    AgreementNotEffective,
    /// Marriage, parent-child or adoption status is not confirmed by this procedure.
    PersonalStatus,
    /// Title to property or intellectual property is not confirmed by this procedure.
    PropertyTitle,
    /// Both parties must apply together.
    NotJoint,
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::WindowPassed => "the application must be made within 30 days of the agreement taking effect (人民调解法 art. 33)",
            Refusal::AgreementNotEffective => "only an agreement in effect (signed by all and sealed) can be confirmed",
            Refusal::PersonalStatus => "marriage, parent-child or adoption status cannot be confirmed (SPC interpretation art. 355)",
            Refusal::PropertyTitle => "title to property or intellectual property cannot be confirmed (SPC interpretation art. 355)",
            Refusal::NotJoint => "both parties must apply jointly (民事诉讼法 art. 205)",
        }
    }
}

/// What the application says about its subject matter.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct Subject {
    #[serde(default)]
    pub concerns_personal_status: bool,
    #[serde(default)]
    pub concerns_property_title: bool,
}

pub fn check_confirmation(effective_at: Option<SystemTime>, now: SystemTime, category: &str, subject: &Subject, applicants: usize, parties: usize) -> Result<(), Refusal> {
    let Some(effective) = effective_at else { return Err(Refusal::AgreementNotEffective) };
    if now.duration_since(effective).unwrap_or_default() > CONFIRMATION_WINDOW {
        return Err(Refusal::WindowPassed);
    }
    if subject.concerns_personal_status {
        return Err(Refusal::PersonalStatus);
    }
    if subject.concerns_property_title || category == "property_title" {
        return Err(Refusal::PropertyTitle);
    }
    if applicants < parties.min(2) {
        return Err(Refusal::NotJoint);
    }
    Ok(())
}

/// A court that may take applications from this deployment's area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Court {
    pub court_id: String,
    pub name: String,
    /// The district it serves, by name (matched against addresses) and org-unit code.
    pub district: String,
    pub org_unit_code: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProposedCourt {
    pub court: Court,
    /// `party_domicile`, `subject_matter_location`, `organisation_location`.
    pub grounds: Vec<String>,
}

/// The basic-level courts with jurisdiction: where a party lives, where the subject matter is,
/// or where the mediation organisation is. The parties choose one.
pub fn propose_courts(courts: &[Court], organisation_district_code: Option<&str>, party_addresses: &[String], subject_location: Option<&str>) -> Vec<ProposedCourt> {
    let mut out: Vec<ProposedCourt> = Vec::new();
    let mut add = |c: &Court, ground: &str| match out.iter_mut().find(|p| p.court.court_id == c.court_id) {
        Some(p) if !p.grounds.iter().any(|g| g == ground) => p.grounds.push(ground.into()),
        Some(_) => {}
        None => out.push(ProposedCourt { court: c.clone(), grounds: vec![ground.into()] }),
    };
    for c in courts {
        if party_addresses.iter().any(|a| a.contains(&c.district)) {
            add(c, "party_domicile");
        }
        if subject_location.is_some_and(|s| s.contains(&c.district)) {
            add(c, "subject_matter_location");
        }
        if organisation_district_code == Some(c.org_unit_code.as_str()) {
            add(c, "organisation_location");
        }
    }
    out
}

/// What a complaint must contain; the names of what is missing.
pub fn filing_gaps(claims: &[String], facts: &str, evidence: &[(String, String, String)], defendants: usize, plaintiffs_with_contact: usize) -> Vec<String> {
    let mut missing = Vec::new();
    if plaintiffs_with_contact == 0 {
        missing.push("plaintiff's identity and contact details".to_string());
    }
    if defendants == 0 {
        missing.push("a defendant".to_string());
    }
    if claims.iter().all(|c| c.trim().is_empty()) {
        missing.push("the claims (诉讼请求)".to_string());
    }
    if facts.trim().chars().count() < 10 {
        missing.push("the facts and reasons (事实与理由)".to_string());
    }
    for (i, (name, source, proves)) in evidence.iter().enumerate() {
        if name.trim().is_empty() || source.trim().is_empty() || proves.trim().is_empty() {
            missing.push(format!("evidence item {}: its name, source and what it proves", i + 1));
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn court(id: &str, district: &str, code: &str) -> Court {
        Court { court_id: id.into(), name: format!("{district}人民法院"), district: district.into(), org_unit_code: code.into() }
    }

    #[test]
    fn confirmation_window_and_exclusions() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ok = Subject::default();
        assert_eq!(check_confirmation(Some(t0), t0 + Duration::from_secs(29 * 86_400), "house_lease", &ok, 2, 2), Ok(()));
        assert_eq!(check_confirmation(Some(t0), t0 + Duration::from_secs(31 * 86_400), "house_lease", &ok, 2, 2), Err(Refusal::WindowPassed));
        assert_eq!(check_confirmation(None, t0, "house_lease", &ok, 2, 2), Err(Refusal::AgreementNotEffective));
        let status = Subject { concerns_personal_status: true, ..Subject::default() };
        assert_eq!(check_confirmation(Some(t0), t0, "marriage_family", &status, 2, 2), Err(Refusal::PersonalStatus));
        assert_eq!(check_confirmation(Some(t0), t0, "property_title", &ok, 2, 2), Err(Refusal::PropertyTitle));
        assert_eq!(check_confirmation(Some(t0), t0, "house_lease", &ok, 1, 2), Err(Refusal::NotJoint));
    }

    #[test]
    fn courts_by_domicile_subject_and_organisation() {
        let courts = [court("sjs", "石景山区", "sjs"), court("hd", "海淀区", "hd"), court("cy", "朝阳区", "cy")];
        let p = propose_courts(&courts, Some("sjs"), &["北京市海淀区中关村".into(), "北京市石景山区鲁谷".into()], Some("朝阳区某小区"));
        let ids: Vec<(&str, Vec<&str>)> = p.iter().map(|x| (x.court.court_id.as_str(), x.grounds.iter().map(|g| g.as_str()).collect())).collect();
        assert_eq!(ids, vec![("sjs", vec!["party_domicile", "organisation_location"]), ("hd", vec!["party_domicile"]), ("cy", vec!["subject_matter_location"])]);
    }

    #[test]
    fn filing_gaps_are_named() {
        assert!(filing_gaps(&["退还押金".into()], "租期届满后拒不退还押金三千元", &[("转账记录".into(), "银行".into(), "已付押金".into())], 1, 1).is_empty());
        let gaps = filing_gaps(&[], "短", &[("照片".into(), String::new(), "损坏".into())], 0, 1);
        assert_eq!(gaps.len(), 4, "{gaps:?}");
    }
}
