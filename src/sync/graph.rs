//! The snapshot graph: ancestry and merge bases, from the snapshot rows (never from clocks).

use crate::db::Db;
use crate::error::Result;
use crate::id::ObjectId;
use std::collections::{HashMap, HashSet};

pub struct Graph {
    pub parents: HashMap<ObjectId, Vec<ObjectId>>,
    pub time: HashMap<ObjectId, i64>,
    /// Snapshots whose trees were pruned here: never a merge base.
    pub pruned: HashSet<ObjectId>,
}

impl Graph {
    pub fn load(db: &Db) -> Result<Graph> {
        let mut parents = HashMap::new();
        let mut time = HashMap::new();
        for r in db.all_snapshots()? {
            time.insert(r.id, r.snap.time);
            parents.insert(r.id, r.snap.parents);
        }
        Ok(Graph {
            parents,
            time,
            pruned: db.pruned()?,
        })
    }

    pub fn contains(&self, id: &ObjectId) -> bool {
        self.parents.contains_key(id)
    }

    /// `id` and all its ancestors.
    pub fn ancestors(&self, id: ObjectId) -> HashSet<ObjectId> {
        let mut seen = HashSet::new();
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            if seen.insert(x) {
                if let Some(ps) = self.parents.get(&x) {
                    stack.extend(ps.iter().copied());
                }
            }
        }
        seen
    }

    pub fn is_ancestor(&self, a: ObjectId, b: ObjectId) -> bool {
        self.ancestors(b).contains(&a)
    }

    /// The best common ancestors of two heads: common ancestors whose trees are present (not
    /// pruned) that are not ancestors of another such one. Sorted by id (deterministic). Empty
    /// when no common ancestor has its trees: sync's no-ancestor rule applies.
    pub fn merge_bases(&self, a: ObjectId, b: ObjectId) -> Vec<ObjectId> {
        let aa = self.ancestors(a);
        let bb = self.ancestors(b);
        let common: HashSet<ObjectId> = aa
            .intersection(&bb)
            .filter(|c| !self.pruned.contains(c))
            .copied()
            .collect();
        let mut dominated = HashSet::new();
        for c in &common {
            for p in self.parents.get(c).into_iter().flatten() {
                for anc in self.ancestors(*p) {
                    dominated.insert(anc);
                }
            }
        }
        let mut out: Vec<ObjectId> = common.difference(&dominated).copied().collect();
        out.sort();
        out
    }

    /// Snapshots reachable from `heads` that `known` lacks, parents before children.
    pub fn missing_from(
        &self,
        heads: &[ObjectId],
        known: &dyn Fn(&ObjectId) -> bool,
    ) -> Vec<ObjectId> {
        let mut need = HashSet::new();
        let mut stack: Vec<ObjectId> = heads.to_vec();
        while let Some(x) = stack.pop() {
            if known(&x) || !need.insert(x) {
                continue;
            }
            if let Some(ps) = self.parents.get(&x) {
                stack.extend(ps.iter().copied());
            }
        }
        topo(&need, &self.parents, &self.time)
    }
}

/// Order `set` parents first (ties by time, then id).
pub fn topo(
    set: &HashSet<ObjectId>,
    parents: &HashMap<ObjectId, Vec<ObjectId>>,
    time: &HashMap<ObjectId, i64>,
) -> Vec<ObjectId> {
    let mut out = Vec::with_capacity(set.len());
    let mut done = HashSet::new();
    let mut items: Vec<ObjectId> = set.iter().copied().collect();
    items.sort_by_key(|id| (time.get(id).copied().unwrap_or(0), *id));
    fn visit(
        x: ObjectId,
        set: &HashSet<ObjectId>,
        parents: &HashMap<ObjectId, Vec<ObjectId>>,
        done: &mut HashSet<ObjectId>,
        out: &mut Vec<ObjectId>,
    ) {
        if !set.contains(&x) || done.contains(&x) {
            return;
        }
        done.insert(x);
        for p in parents.get(&x).into_iter().flatten() {
            visit(*p, set, parents, done, out);
        }
        out.push(x);
    }
    for x in items {
        visit(x, set, parents, &mut done, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Kind;

    fn id(n: u8) -> ObjectId {
        ObjectId::hash(Kind::Snapshot, &[n])
    }

    /// 1 <- 2 <- 3 <- {4, 5}: the base of 4 and 5 is 3; with 3 pruned, 2; with 1..3 pruned,
    /// none.
    #[test]
    fn pruned_snapshots_are_never_merge_bases() {
        let mut parents = HashMap::new();
        parents.insert(id(1), vec![]);
        parents.insert(id(2), vec![id(1)]);
        parents.insert(id(3), vec![id(2)]);
        parents.insert(id(4), vec![id(3)]);
        parents.insert(id(5), vec![id(3)]);
        let time = parents.keys().map(|k| (*k, 0)).collect();
        let mut g = Graph {
            parents,
            time,
            pruned: HashSet::new(),
        };
        assert_eq!(g.merge_bases(id(4), id(5)), vec![id(3)]);
        g.pruned.insert(id(3));
        assert_eq!(g.merge_bases(id(4), id(5)), vec![id(2)]);
        g.pruned.extend([id(1), id(2)]);
        assert!(g.merge_bases(id(4), id(5)).is_empty());
    }
}
