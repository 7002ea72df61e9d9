//! Stage deadlines (限期解决): every open status has a time limit; the quick track (接诉即办)
//! shortens them. Past the limit a case is overdue, escalated to the leaders' supervision queue.

use std::time::{Duration, SystemTime};

use super::state::CaseStatus;

const DAY: u64 = 24 * 3600;

/// How long a case may stay in `status` before it is overdue; `None` when no clock runs.
pub fn stage_limit(status: CaseStatus, quick_track: bool) -> Option<Duration> {
    // Online mediation rules (2021): a mediator chosen within 2 working days, else assigned
    // within 3; the people's mediation practice gives 30 days to mediate. Quick handling
    // (Beijing 接诉即办) answers within days, not weeks.
    let days = match (status, quick_track) {
        (CaseStatus::Registered, false) => 3,
        (CaseStatus::Registered, true) => 1,
        (CaseStatus::Accepted, false) => 3,
        (CaseStatus::Accepted, true) => 1,
        (CaseStatus::Assigned, false) => 3,
        (CaseStatus::Assigned, true) => 1,
        (CaseStatus::Mediating, false) => 30,
        (CaseStatus::Mediating, true) => 7,
        // The follow-up visit is due within 15 days of closure.
        (CaseStatus::Closed, _) => 15,
        _ => return None,
    };
    Some(Duration::from_secs(days * DAY))
}

/// The due time of a stage entered at `entered`.
pub fn due_at(status: CaseStatus, quick_track: bool, entered: SystemTime) -> Option<SystemTime> {
    stage_limit(status, quick_track).map(|d| entered + d)
}

/// Escalation levels: 0 on time, 1 reminded (within the last fifth of the limit), 2 overdue.
pub fn escalation(status: CaseStatus, quick_track: bool, due: SystemTime, now: SystemTime) -> u8 {
    let Some(limit) = stage_limit(status, quick_track) else { return 0 };
    if now >= due {
        2
    } else if due.duration_since(now).unwrap_or_default() <= limit / 5 {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_track_is_shorter_and_final_states_have_no_clock() {
        for s in [CaseStatus::Registered, CaseStatus::Accepted, CaseStatus::Assigned, CaseStatus::Mediating] {
            assert!(stage_limit(s, true) < stage_limit(s, false), "{s:?}");
        }
        assert_eq!(stage_limit(CaseStatus::Supervised, false), None);
        assert_eq!(stage_limit(CaseStatus::Refused, true), None);
    }

    #[test]
    fn escalation_steps() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let due = due_at(CaseStatus::Mediating, false, t0).expect("clock runs");
        assert_eq!(escalation(CaseStatus::Mediating, false, due, t0), 0);
        assert_eq!(escalation(CaseStatus::Mediating, false, due, due - Duration::from_secs(DAY)), 1);
        assert_eq!(escalation(CaseStatus::Mediating, false, due, due), 2);
    }
}
