//! The org-unit tree, loaded whole (a district has tens of units, not thousands) to answer
//! "which units are under this one" and "what is above this one" without recursive SQL.

use std::collections::HashMap;

use crate::db::{Db, DbError};

#[derive(Debug, Clone)]
pub struct Unit {
    pub org_unit_id: i64,
    pub parent_id: Option<i64>,
    pub level: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct OrgTree {
    units: HashMap<i64, Unit>,
}

impl OrgTree {
    pub async fn load(db: &Db) -> Result<OrgTree, DbError> {
        let rows: Vec<(i64, Option<i64>, String, String)> = sqlx::query_as("select org_unit_id, parent_id, level, name from org_unit").fetch_all(&db.pool).await?;
        Ok(OrgTree::from_units(rows.into_iter().map(|(org_unit_id, parent_id, level, name)| Unit { org_unit_id, parent_id, level, name })))
    }

    pub fn from_units(units: impl IntoIterator<Item = Unit>) -> OrgTree {
        OrgTree { units: units.into_iter().map(|u| (u.org_unit_id, u)).collect() }
    }

    pub fn get(&self, id: i64) -> Option<&Unit> {
        self.units.get(&id)
    }

    /// `id` and every unit below it.
    pub fn subtree(&self, id: i64) -> Vec<i64> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            out.extend(self.units.values().filter(|u| u.parent_id == Some(parent)).map(|u| u.org_unit_id));
            i += 1;
        }
        out
    }

    /// `id` and its ancestors, nearest first. Stops on a cycle rather than looping.
    pub fn path_up(&self, id: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut cur = Some(id);
        while let Some(c) = cur {
            if out.contains(&c) || !self.units.contains_key(&c) {
                break;
            }
            out.push(c);
            cur = self.units.get(&c).and_then(|u| u.parent_id);
        }
        out
    }

    pub fn contains(&self, ancestor: i64, id: i64) -> bool {
        self.path_up(id).contains(&ancestor)
    }

    /// The street an org unit belongs to (itself if it is one).
    pub fn street_of(&self, id: i64) -> Option<i64> {
        self.path_up(id).into_iter().find(|u| self.units.get(u).is_some_and(|u| u.level == "street"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_and_path() {
        let u = |id, parent, level: &str| Unit { org_unit_id: id, parent_id: parent, level: level.into(), name: String::new() };
        let t = OrgTree::from_units([u(1, None, "district"), u(2, Some(1), "street"), u(3, Some(2), "community"), u(4, Some(1), "street")]);
        let mut s = t.subtree(2);
        s.sort();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(t.path_up(3), vec![3, 2, 1]);
        assert!(t.contains(1, 3) && !t.contains(4, 3));
        assert_eq!(t.street_of(3), Some(2));
    }
}
