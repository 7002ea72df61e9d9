//! Which cases a staff member may see: those of their org unit's subtree; mediators and lawyers
//! only those assigned to them. Out-of-scope cases answer 404, so their existence does not leak.

use super::AppState;
use super::auth::Staff;
use super::error::ApiError;
use crate::auth::Permission;
use crate::store::cases::{self, Bind, CaseRow, Where};
use crate::store::org::OrgTree;

pub struct CaseScope {
    /// `None`: every unit.
    pub units: Option<Vec<i64>>,
    /// For case workers: only cases assigned to this mediator (none if the account has no mediator).
    pub mediator: Option<Option<i64>>,
}

impl CaseScope {
    pub async fn of(state: &AppState, staff: &Staff) -> Result<CaseScope, ApiError> {
        let units = match staff.0.org_unit_id {
            None => None,
            Some(unit) => Some(OrgTree::load(&state.db).await?.subtree(unit)),
        };
        let mediator = staff.0.role.is_case_worker().then_some(staff.0.mediator_id);
        Ok(CaseScope { units, mediator })
    }

    pub fn sees(&self, c: &CaseRow) -> bool {
        let in_units = self.units.as_ref().is_none_or(|u| u.contains(&c.org_unit_id));
        let assigned = match self.mediator {
            None => true,
            Some(m) => m.is_some() && c.mediator_id == m,
        };
        in_units && assigned
    }

    /// Adds the scope to a `where` over `dispute_case` aliased `c`.
    pub fn restrict(&self, w: &mut Where) {
        if let Some(units) = &self.units {
            // Ids come from our own tree, never from the request.
            let list: Vec<String> = units.iter().map(|u| u.to_string()).collect();
            w.add_raw(format!("c.org_unit_id in ({})", list.join(",")));
        }
        match self.mediator {
            None => {}
            Some(Some(m)) => w.add("c.mediator_id = ?", Bind::Int(m)),
            Some(None) => w.add_raw("1 = 0".into()),
        }
    }
}

/// Loads a case the staff member may see and act on with `permission`.
pub async fn case_for(state: &AppState, staff: &Staff, case_id: i64, permission: Permission) -> Result<CaseRow, ApiError> {
    let case = cases::load(&state.db, case_id).await?.ok_or_else(|| ApiError::NotFound(format!("no case {case_id}")))?;
    if !CaseScope::of(state, staff).await?.sees(&case) {
        return Err(ApiError::NotFound(format!("no case {case_id}")));
    }
    staff.require(permission)?;
    Ok(case)
}
