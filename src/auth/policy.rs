//! Who may do what: staff roles, the actions on cases, and the org-unit scope. Pure, so that the
//! authorisation matrix is one table with one test.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    SystemAdmin,
    DistrictCoordinator,
    StreetStaff,
    CommunityStaff,
    Mediator,
    Lawyer,
    Assessor,
    Leader,
    CourtLiaison,
}

impl StaffRole {
    pub const ALL: [StaffRole; 9] = [
        StaffRole::SystemAdmin,
        StaffRole::DistrictCoordinator,
        StaffRole::StreetStaff,
        StaffRole::CommunityStaff,
        StaffRole::Mediator,
        StaffRole::Lawyer,
        StaffRole::Assessor,
        StaffRole::Leader,
        StaffRole::CourtLiaison,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::SystemAdmin => "system_admin",
            StaffRole::DistrictCoordinator => "district_coordinator",
            StaffRole::StreetStaff => "street_staff",
            StaffRole::CommunityStaff => "community_staff",
            StaffRole::Mediator => "mediator",
            StaffRole::Lawyer => "lawyer",
            StaffRole::Assessor => "assessor",
            StaffRole::Leader => "leader",
            StaffRole::CourtLiaison => "court_liaison",
        }
    }

    pub fn parse(s: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Mediators and lawyers in the pool work the cases assigned to them.
    pub fn is_case_worker(self) -> bool {
        matches!(self, StaffRole::Mediator | StaffRole::Lawyer)
    }
}

/// Everything a staff member can ask to do to a case or the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadCase,
    RegisterCase,
    /// Accept or refuse a registered case, transfer it, assign a mediator.
    TriageCase,
    EditCase,
    /// Start mediation, record the outcome, schedule sessions, write minutes.
    MediateCase,
    CloseCase,
    FollowUpCase,
    /// Supervise, reopen, take a case personally (领导包案).
    SuperviseCase,
    AssessCase,
    /// Import from other systems (12345, petitions, the court).
    ImportCases,
    ManageStaff,
    ManageCategories,
}

pub fn allows(role: StaffRole, p: Permission) -> bool {
    use Permission as P;
    use StaffRole as R;
    match role {
        R::SystemAdmin => true,
        R::DistrictCoordinator => !matches!(p, P::ManageStaff | P::ManageCategories | P::AssessCase),
        R::StreetStaff | R::CommunityStaff => {
            matches!(p, P::ReadCase | P::RegisterCase | P::TriageCase | P::EditCase | P::CloseCase | P::FollowUpCase)
        }
        R::Mediator | R::Lawyer => matches!(p, P::ReadCase | P::EditCase | P::MediateCase | P::CloseCase),
        R::Assessor => matches!(p, P::ReadCase | P::AssessCase),
        R::Leader => matches!(p, P::ReadCase | P::SuperviseCase | P::FollowUpCase | P::TriageCase),
        R::CourtLiaison => matches!(p, P::ReadCase),
    }
}

/// The permission each case action needs.
pub fn permission_for(action: crate::case::CaseAction) -> Permission {
    use crate::case::CaseAction as A;
    match action {
        A::Accept | A::Refuse | A::Assign | A::Transfer => Permission::TriageCase,
        A::StartMediation | A::ReachAgreement | A::Fail => Permission::MediateCase,
        A::Close => Permission::CloseCase,
        A::FollowUp => Permission::FollowUpCase,
        A::Supervise | A::Reopen => Permission::SuperviseCase,
        A::Withdraw => Permission::EditCase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_only_admins_manage_staff() {
        for r in StaffRole::ALL {
            assert_eq!(StaffRole::parse(r.as_str()), Some(r));
            assert_eq!(allows(r, Permission::ManageStaff), r == StaffRole::SystemAdmin);
            assert!(allows(r, Permission::ReadCase));
        }
        assert!(!allows(StaffRole::CourtLiaison, Permission::EditCase));
        assert!(!allows(StaffRole::Assessor, Permission::MediateCase));
        assert!(allows(StaffRole::Assessor, Permission::AssessCase));
    }
}
