//! Specialist matching (以专对专): ranks mediators for a case and says why, so that the ranking
//! can be explained to the party (PIPL: automated decisions must be transparent).

use serde::Serialize;

/// What the ranking looks at in the case.
#[derive(Debug, Clone)]
pub struct CaseFacts {
    pub category_code: String,
    /// The case's org unit and its ancestors, nearest first (community, street, district).
    pub org_path: Vec<i64>,
    /// Languages the parties asked for (`zh`, `en`, ...).
    pub languages: Vec<String>,
}

/// A mediator in the resource pool (mediator, pro-bono lawyer or volunteer) as matching sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    pub mediator_id: i64,
    pub name: String,
    pub kind: String,
    pub mediation_org_id: i64,
    pub mediation_org_name: String,
    pub org_unit_id: i64,
    pub specialties: Vec<String>,
    pub languages: Vec<String>,
    pub available: bool,
    /// Open cases assigned now.
    pub load: i64,
    pub max_load: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// `specialty`, `locality`, `load`, `language`, `capacity`.
    pub code: &'static str,
    pub points: i64,
    /// A sentence in English; the UI shows its own translation keyed by `code`.
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub mediator_id: i64,
    pub name: String,
    pub kind: String,
    pub mediation_org_id: i64,
    pub mediation_org_name: String,
    pub score: i64,
    pub load: i64,
    pub max_load: i64,
    pub reasons: Vec<Reason>,
}

const SPECIALTY: i64 = 50;
const SAME_UNIT: i64 = 30;
const PER_LEVEL_AWAY: i64 = 10;
const LANGUAGE: i64 = 15;
const PER_OPEN_CASE: i64 = 4;

/// Ranked suggestions: unavailable or full mediators are left out; ties keep the lighter load first.
pub fn rank(case: &CaseFacts, candidates: &[Candidate]) -> Vec<Suggestion> {
    let mut out: Vec<Suggestion> = candidates
        .iter()
        .filter(|c| c.available && c.load < c.max_load)
        .map(|c| {
            let mut reasons = Vec::new();
            if c.specialties.contains(&case.category_code) {
                reasons.push(Reason { code: "specialty", points: SPECIALTY, explanation: format!("specialises in {}", case.category_code) });
            }
            if let Some(distance) = case.org_path.iter().position(|u| *u == c.org_unit_id) {
                let points = SAME_UNIT - PER_LEVEL_AWAY * distance as i64;
                let explanation = if distance == 0 { "works in the case's own org unit".to_string() } else { format!("works {distance} level(s) above the case's org unit") };
                reasons.push(Reason { code: "locality", points, explanation });
            }
            let wanted: Vec<&String> = case.languages.iter().filter(|l| l.as_str() != "zh").collect();
            if !wanted.is_empty() && wanted.iter().all(|l| c.languages.contains(l)) {
                reasons.push(Reason { code: "language", points: LANGUAGE, explanation: format!("speaks {}", wanted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) });
            }
            reasons.push(Reason { code: "load", points: -PER_OPEN_CASE * c.load, explanation: format!("{} open case(s) of at most {}", c.load, c.max_load) });
            let score = reasons.iter().map(|r| r.points).sum();
            Suggestion {
                mediator_id: c.mediator_id,
                name: c.name.clone(),
                kind: c.kind.clone(),
                mediation_org_id: c.mediation_org_id,
                mediation_org_name: c.mediation_org_name.clone(),
                score,
                load: c.load,
                max_load: c.max_load,
                reasons,
            }
        })
        .collect();
    out.sort_by(|a, b| b.score.cmp(&a.score).then(a.load.cmp(&b.load)).then(a.mediator_id.cmp(&b.mediator_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, unit: i64, specialties: &[&str], langs: &[&str], load: i64) -> Candidate {
        Candidate {
            mediator_id: id,
            name: format!("m{id}"),
            kind: "mediator".into(),
            mediation_org_id: 1,
            mediation_org_name: "org".into(),
            org_unit_id: unit,
            specialties: specialties.iter().map(|s| s.to_string()).collect(),
            languages: langs.iter().map(|s| s.to_string()).collect(),
            available: true,
            load,
            max_load: 8,
        }
    }

    fn facts(langs: &[&str]) -> CaseFacts {
        CaseFacts { category_code: "house_lease".into(), org_path: vec![30, 20, 10], languages: langs.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn specialty_outranks_locality_and_load_breaks_ties() {
        let ranked = rank(&facts(&["zh"]), &[cand(1, 30, &["labour_contract"], &["zh"], 0), cand(2, 10, &["house_lease"], &["zh"], 1), cand(3, 10, &["house_lease"], &["zh"], 0)]);
        let ids: Vec<i64> = ranked.iter().map(|s| s.mediator_id).collect();
        assert_eq!(ids, vec![3, 2, 1]);
        assert!(ranked[0].reasons.iter().any(|r| r.code == "specialty"));
        // Every point of the score is explained.
        for s in &ranked {
            assert_eq!(s.score, s.reasons.iter().map(|r| r.points).sum::<i64>());
        }
    }

    #[test]
    fn language_counts_and_unavailable_or_full_are_left_out() {
        let mut away = cand(4, 30, &["house_lease"], &["zh", "en"], 0);
        away.available = false;
        let mut full = cand(5, 30, &["house_lease"], &["zh", "en"], 8);
        full.max_load = 8;
        let ranked = rank(&facts(&["en"]), &[cand(1, 30, &["house_lease"], &["zh"], 0), cand(2, 30, &["house_lease"], &["zh", "en"], 0), away, full]);
        let ids: Vec<i64> = ranked.iter().map(|s| s.mediator_id).collect();
        assert_eq!(ids, vec![2, 1]);
        assert!(ranked[0].reasons.iter().any(|r| r.code == "language"));
    }
}
