//! The case state machine. Every status change goes through [`apply`]; the handlers cannot set a
//! status any other way, so an illegal transition is refused in one place with one error.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// 登记: intake recorded, not yet examined.
    Registered,
    /// 受理: the organisation takes the case on.
    Accepted,
    /// A mediator is assigned.
    Assigned,
    /// Mediation under way (sessions, caucus, records).
    Mediating,
    /// 达成协议.
    AgreementReached,
    /// 调解不成.
    MediationFailed,
    /// 结案.
    Closed,
    /// 回访 done.
    FollowedUp,
    /// 督查问效 done: the loop is closed.
    Supervised,
    /// 不予受理 (with a reason).
    Refused,
    /// The applicant withdrew (人民调解法 art. 23: a party may ask to end the mediation).
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseAction {
    Accept,
    Refuse,
    Assign,
    StartMediation,
    ReachAgreement,
    Fail,
    Close,
    FollowUp,
    Supervise,
    Withdraw,
    Reopen,
    /// 转送: to another org unit or organisation; an assigned mediator is released.
    Transfer,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 11] = [
        CaseStatus::Registered,
        CaseStatus::Accepted,
        CaseStatus::Assigned,
        CaseStatus::Mediating,
        CaseStatus::AgreementReached,
        CaseStatus::MediationFailed,
        CaseStatus::Closed,
        CaseStatus::FollowedUp,
        CaseStatus::Supervised,
        CaseStatus::Refused,
        CaseStatus::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Registered => "registered",
            CaseStatus::Accepted => "accepted",
            CaseStatus::Assigned => "assigned",
            CaseStatus::Mediating => "mediating",
            CaseStatus::AgreementReached => "agreement_reached",
            CaseStatus::MediationFailed => "mediation_failed",
            CaseStatus::Closed => "closed",
            CaseStatus::FollowedUp => "followed_up",
            CaseStatus::Supervised => "supervised",
            CaseStatus::Refused => "refused",
            CaseStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Still being worked on: deadlines run and the case counts towards a mediator's load.
    pub fn is_open(self) -> bool {
        matches!(self, CaseStatus::Registered | CaseStatus::Accepted | CaseStatus::Assigned | CaseStatus::Mediating)
    }

    /// The open statuses as an SQL list (`'registered','accepted',...`), for `status in (...)`.
    pub fn open_sql_list() -> String {
        CaseStatus::ALL.iter().filter(|s| s.is_open()).map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",")
    }
}

impl CaseAction {
    pub const ALL: [CaseAction; 12] = [
        CaseAction::Accept,
        CaseAction::Refuse,
        CaseAction::Assign,
        CaseAction::StartMediation,
        CaseAction::ReachAgreement,
        CaseAction::Fail,
        CaseAction::Close,
        CaseAction::FollowUp,
        CaseAction::Supervise,
        CaseAction::Withdraw,
        CaseAction::Reopen,
        CaseAction::Transfer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseAction::Accept => "accept",
            CaseAction::Refuse => "refuse",
            CaseAction::Assign => "assign",
            CaseAction::StartMediation => "start_mediation",
            CaseAction::ReachAgreement => "reach_agreement",
            CaseAction::Fail => "fail",
            CaseAction::Close => "close",
            CaseAction::FollowUp => "follow_up",
            CaseAction::Supervise => "supervise",
            CaseAction::Withdraw => "withdraw",
            CaseAction::Reopen => "reopen",
            CaseAction::Transfer => "transfer",
        }
    }

    /// Actions whose reason is part of the record and must be given.
    pub fn needs_reason(self) -> bool {
        matches!(self, CaseAction::Refuse | CaseAction::Fail | CaseAction::Withdraw | CaseAction::Reopen | CaseAction::Transfer)
    }

    pub fn parse(s: &str) -> Option<CaseAction> {
        CaseAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a case that is {} cannot be given the action {}", from.as_str(), action.as_str())]
pub struct IllegalTransition {
    pub from: CaseStatus,
    pub action: CaseAction,
}

/// The status after `action`, or why it is not allowed.
pub fn apply(from: CaseStatus, action: CaseAction) -> Result<CaseStatus, IllegalTransition> {
    use CaseAction as A;
    use CaseStatus as S;
    let to = match (from, action) {
        (S::Registered, A::Accept) => S::Accepted,
        (S::Registered, A::Refuse) => S::Refused,
        // Reassignment keeps the status; the event log shows who had it before.
        (S::Accepted | S::Assigned, A::Assign) => S::Assigned,
        (S::Assigned, A::StartMediation) => S::Mediating,
        (S::Mediating, A::ReachAgreement) => S::AgreementReached,
        (S::Mediating, A::Fail) => S::MediationFailed,
        (S::AgreementReached | S::MediationFailed | S::Refused | S::Withdrawn, A::Close) => S::Closed,
        (S::Closed, A::FollowUp) => S::FollowedUp,
        (S::FollowedUp, A::Supervise) => S::Supervised,
        (S::Registered | S::Accepted | S::Assigned | S::Mediating, A::Withdraw) => S::Withdrawn,
        // An agreement not performed, or a party unsatisfied at follow-up: back to work.
        (S::Closed | S::FollowedUp | S::Supervised, A::Reopen) => S::Accepted,
        (S::Registered, A::Transfer) => S::Registered,
        (S::Accepted | S::Assigned, A::Transfer) => S::Accepted,
        _ => return Err(IllegalTransition { from, action }),
    };
    Ok(to)
}

/// The actions possible from `status` (what the UI offers).
pub fn available(status: CaseStatus) -> Vec<CaseAction> {
    CaseAction::ALL.into_iter().filter(|a| apply(status, *a).is_ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_main_path_runs_from_registration_to_supervision() {
        let path = [
            CaseAction::Accept,
            CaseAction::Assign,
            CaseAction::StartMediation,
            CaseAction::ReachAgreement,
            CaseAction::Close,
            CaseAction::FollowUp,
            CaseAction::Supervise,
        ];
        let end = path.iter().try_fold(CaseStatus::Registered, |s, a| apply(s, *a)).expect("legal path");
        assert_eq!(end, CaseStatus::Supervised);
    }

    #[test]
    fn illegal_transitions_are_refused() {
        for (from, action) in [
            (CaseStatus::Registered, CaseAction::ReachAgreement),
            (CaseStatus::Registered, CaseAction::Close),
            (CaseStatus::Accepted, CaseAction::StartMediation),
            (CaseStatus::Closed, CaseAction::Withdraw),
            (CaseStatus::Supervised, CaseAction::Supervise),
            (CaseStatus::Refused, CaseAction::Accept),
        ] {
            assert_eq!(apply(from, action), Err(IllegalTransition { from, action }));
        }
    }

    #[test]
    fn names_round_trip() {
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
        }
    }

    /// Random action sequences: whatever is tried, the machine only ever moves along its table,
    /// never leaves a terminal-for-now state without the one action that reopens it, and a
    /// closed case is reached only through an outcome, a refusal or a withdrawal.
    #[test]
    fn random_sequences_keep_the_invariants() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6a69_6566);
        for _ in 0..2_000 {
            let mut status = CaseStatus::Registered;
            let mut history = vec![status];
            for _ in 0..40 {
                let action = CaseAction::ALL[rng.random_range(0..CaseAction::ALL.len())];
                match apply(status, action) {
                    Ok(next) => {
                        assert!(available(status).contains(&action));
                        if next == CaseStatus::Mediating {
                            assert_eq!(status, CaseStatus::Assigned, "mediation starts only once a mediator is assigned");
                        }
                        if next == CaseStatus::Closed {
                            assert!(matches!(
                                status,
                                CaseStatus::AgreementReached | CaseStatus::MediationFailed | CaseStatus::Refused | CaseStatus::Withdrawn
                            ));
                        }
                        if next == CaseStatus::Supervised {
                            assert!(history.contains(&CaseStatus::FollowedUp));
                        }
                        status = next;
                        history.push(status);
                    }
                    Err(e) => {
                        assert_eq!(e.from, status);
                        assert!(!available(status).contains(&action));
                    }
                }
            }
            // Every status reached has a way forward (no dead end but the end of the loop).
            assert!(!available(status).is_empty(), "{status:?} is a dead end");
        }
    }
}
