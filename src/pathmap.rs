//! Cross-machine project mapping. Claude Code files a session under `projects/<cwd with every
//! non-alphanumeric character as ->`, so one repository at `/Users/me/code/app` on a laptop and
//! at `/workspace/app` on a GPU box lands in `-Users-me-code-app` and `-workspace-app`.
//!
//! Trees hold one **canonical** name per project directory; a snapshot's `pathmap` says, per
//! class of equivalent prefixes, which prefix each store (machine) uses locally. Each machine
//! translates at the filesystem boundary: scans turn local names into canonical ones, applies
//! turn canonical names into local ones. The translation is a pure function of the map (not of
//! who recorded a tree), so both peers of a merge canonicalise both sides the same way and
//! converge on the same snapshot id.
//!
//! Format (snapshot key `pathmap`): class key (the canonical prefix) -> store id ->
//! `[local prefix, time ms]`. Prefixes are encoded directory names without a trailing `-`
//! (`-Users-me-code`); a name matches a prefix when it equals it or continues with `-`.

use crate::object::EntryKind;
use crate::tree::FlatTree;
use std::collections::BTreeMap;

/// The serialized form (snapshot key `pathmap`).
pub type RawPathMap = BTreeMap<String, BTreeMap<String, (String, i64)>>;

/// Claude Code cuts project directory names longer than this and appends a hash.
pub const MAX_DIR_NAME: usize = 200;

#[derive(Clone, Debug, Default)]
pub struct PathMap {
    classes: RawPathMap,
    /// This home's project directories (not part of the map: context for matching names
    /// Claude Code cut at 200 characters, see `local_dir`).
    local_dirs: Vec<String>,
    /// Context too: cut names folded into one (`with_folds_for`), applied by `canonicalize`.
    folds: BTreeMap<String, String>,
}

impl PartialEq for PathMap {
    fn eq(&self, other: &PathMap) -> bool {
        self.classes == other.classes
    }
}
impl Eq for PathMap {}

/// The body of a name Claude Code cut (its first 200 characters, before `-<hash>`), given
/// the length the body must have; `None` when the name does not have that shape.
fn cut_body(name: &str, body_len: usize) -> Option<&str> {
    let (body, hash) = name.rsplit_once('-')?;
    (body.len() == body_len
        && body.len() >= MIN_CUT_BODY
        && !hash.is_empty()
        && hash.len() <= 64
        && hash.chars().all(|c| c.is_ascii_alphanumeric()))
    .then_some(body)
}

/// Two cut bodies name one project when one is a prefix of the other.
fn bodies_meet(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Matching cut names by prefix needs this much shared text, so that unrelated projects
/// never meet.
const MIN_CUT_BODY: usize = 100;

/// `name` starts with the encoded prefix at a path-component boundary: the rest.
fn strip<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('-')).then_some(rest)
}

impl PathMap {
    pub fn from_raw(raw: Option<&RawPathMap>) -> PathMap {
        let mut m = PathMap {
            classes: raw.cloned().unwrap_or_default(),
            local_dirs: Vec::new(),
            folds: BTreeMap::new(),
        };
        m.normalize();
        m
    }

    pub fn to_raw(&self) -> Option<RawPathMap> {
        (!self.classes.is_empty()).then(|| self.classes.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Give the map this home's project directory names, for matching cut names.
    pub fn with_local_dirs(mut self, home: &std::path::Path) -> PathMap {
        self.local_dirs = std::fs::read_dir(home.join("projects"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        self
    }

    /// The body of a canonical name that comes from a name Claude Code cut at 200 characters
    /// on some machine: the cut name's prefix `P` became the class key `K`, so the body is
    /// `200 - |P| + |K|` long for one of the class's prefixes (or exactly 200 unmapped).
    fn canonical_cut_body<'a>(&self, c: &'a str) -> Option<&'a str> {
        if let Some(b) = cut_body(c, MAX_DIR_NAME) {
            return Some(b);
        }
        for (key, class) in &self.classes {
            if strip(c, key).is_none() {
                continue;
            }
            for (p, _) in class.values() {
                let len = (MAX_DIR_NAME + key.len()).checked_sub(p.len());
                if let Some(b) = len.and_then(|l| cut_body(c, l)) {
                    return Some(b);
                }
            }
        }
        None
    }

    /// Canonical names of one project cut differently on two machines (by Claude Code, at 200
    /// characters, each with its own hash) fold into one: for every group of such names among
    /// `names` whose bodies are prefixes of one another, each maps to the group's smallest.
    /// Only names that change are returned. Symmetric: a function of the set of names.
    pub fn fold_cut_names<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, String> {
        let mut cut: Vec<(&str, &str)> = names
            .into_iter()
            .filter_map(|n| self.canonical_cut_body(n).map(|b| (n, b)))
            .collect();
        cut.sort();
        cut.dedup();
        let mut out = BTreeMap::new();
        for (n, b) in &cut {
            let least = cut
                .iter()
                .filter(|(_, b2)| bodies_meet(b, b2))
                .map(|(n2, _)| *n2)
                .min()
                .unwrap_or(n);
            if least != *n {
                out.insert(n.to_string(), least.to_string());
            }
        }
        out
    }

    /// Rename project directories of a canonical tree by `renames` (from `fold_cut_names`),
    /// folding them into the directory they are renamed to. Where both hold a path, the larger
    /// version stays (sessions only grow; the other stays in the history).
    pub fn rename_cut(flat: &FlatTree, renames: &BTreeMap<String, String>) -> FlatTree {
        if renames.is_empty() {
            return flat.clone();
        }
        let mut out = FlatTree::new();
        let mut moved = Vec::new();
        for (p, e) in flat {
            let mut parts = p.splitn(3, '/');
            let (top, dir, rest) = (parts.next(), parts.next(), parts.next());
            match (top, dir.and_then(|d| renames.get(d))) {
                (Some("projects"), Some(new)) => {
                    let mut e = e.clone();
                    let np = match rest {
                        Some(r) => format!("projects/{new}/{r}"),
                        None => {
                            e.name = new.clone();
                            format!("projects/{new}")
                        }
                    };
                    moved.push((np, e));
                }
                _ => {
                    out.insert(p.clone(), e.clone());
                }
            }
        }
        for (p, e) in moved {
            match out.get(&p) {
                Some(cur) if cur.kind == EntryKind::Dir || cur.size >= e.size => {}
                _ => {
                    out.insert(p, e);
                }
            }
        }
        out
    }

    /// Fold cut names among the project directories of `trees` (see `fold_cut_names`): the
    /// map then applies the folds in `canonicalize`.
    pub fn with_folds_for(mut self, trees: &[&FlatTree]) -> PathMap {
        let mut names: Vec<String> = Vec::new();
        for t in trees {
            for p in t.keys() {
                if let Some(d) = p
                    .strip_prefix("projects/")
                    .and_then(|r| r.split('/').next())
                {
                    names.push(self.canonical_dir(d));
                }
            }
        }
        names.sort();
        names.dedup();
        self.folds = self.fold_cut_names(names.iter().map(String::as_str));
        self
    }

    pub fn classes(&self) -> &RawPathMap {
        &self.classes
    }

    /// Record that `store_a` uses `prefix_a` where `store_b` uses `prefix_b` (a later rule for
    /// the same store replaces its earlier prefix: a map change).
    pub fn add_rule(
        &mut self,
        store_a: &str,
        prefix_a: &str,
        store_b: &str,
        prefix_b: &str,
        time: i64,
    ) {
        let key = prefix_a.min(prefix_b).to_string();
        let mut class = BTreeMap::new();
        class.insert(store_a.to_string(), (prefix_a.to_string(), time));
        merge_entry(&mut class, store_b, (prefix_b.to_string(), time));
        let mut other = PathMap::default();
        other.classes.insert(key, class);
        *self = self.union(&other);
    }

    /// Both maps' rules (symmetric: `a.union(b) == b.union(a)`).
    pub fn union(&self, other: &PathMap) -> PathMap {
        let mut m = self.clone();
        for (k, class) in &other.classes {
            let mine = m.classes.entry(k.clone()).or_default();
            for (store, v) in class {
                merge_entry(mine, store, v.clone());
            }
        }
        m.normalize();
        m
    }

    /// Merge classes that share a (store, prefix) entry or whose key is another's prefix, until
    /// none do: union-find over classes, the smallest key naming the merged class.
    fn normalize(&mut self) {
        loop {
            let keys: Vec<String> = self.classes.keys().cloned().collect();
            let mut joined = None;
            'outer: for (i, a) in keys.iter().enumerate() {
                for b in &keys[i + 1..] {
                    let (ca, cb) = (&self.classes[a], &self.classes[b]);
                    let prefixes_a: Vec<&str> = ca
                        .values()
                        .map(|v| v.0.as_str())
                        .chain([a.as_str()])
                        .collect();
                    let shares = cb
                        .values()
                        .map(|v| v.0.as_str())
                        .chain([b.as_str()])
                        .any(|p| prefixes_a.contains(&p));
                    if shares {
                        joined = Some((a.clone(), b.clone()));
                        break 'outer;
                    }
                }
            }
            let Some((a, b)) = joined else {
                return;
            };
            let cb = self.classes.remove(&b).unwrap_or_default();
            let ca = self.classes.entry(a.min(b)).or_default();
            for (store, v) in cb {
                merge_entry(ca, &store, v);
            }
        }
    }

    /// The canonical name of a project directory (the longest matching prefix of any store wins).
    pub fn canonical_dir(&self, dir: &str) -> String {
        let mut best: Option<(usize, String)> = None;
        for (key, class) in &self.classes {
            for p in class.values().map(|v| v.0.as_str()).chain([key.as_str()]) {
                if p.is_empty() {
                    continue;
                }
                if let Some(rest) = strip(dir, p) {
                    if best.as_ref().is_none_or(|b| p.len() > b.0) {
                        best = Some((p.len(), format!("{key}{rest}")));
                    }
                }
            }
        }
        best.map(|b| b.1).unwrap_or_else(|| dir.to_string())
    }

    /// The name `store` uses for a canonical project directory.
    pub fn local_dir(&self, dir: &str, store: &str) -> String {
        let canon = self.canonical_dir(dir);
        let local = self.local_dir_plain(&canon, store);
        // A name Claude Code cut: this home's directory of that project, if it has one, is
        // the one whose cut body meets ours (matched by prefix).
        if !self.local_dirs.contains(&local) {
            if let Some(body) = self.canonical_cut_body(&canon) {
                let local_body = self.local_dir_plain(body, store);
                if let Some(d) = self
                    .local_dirs
                    .iter()
                    .filter(|d| {
                        cut_body(d, MAX_DIR_NAME).is_some_and(|b| bodies_meet(b, &local_body))
                    })
                    .min()
                {
                    return d.clone();
                }
            }
        }
        local
    }

    /// `local_dir` without the cut-name matching (for bodies).
    fn local_dir_plain(&self, canon: &str, store: &str) -> String {
        let mut best: Option<(usize, String)> = None;
        for (key, class) in &self.classes {
            if let (Some(rest), Some((p, _))) = (strip(canon, key), class.get(store)) {
                if !p.is_empty() && best.as_ref().is_none_or(|b| key.len() > b.0) {
                    best = Some((key.len(), format!("{p}{rest}")));
                }
            }
        }
        best.map(|b| b.1).unwrap_or(canon.to_string())
    }

    /// Was `canon` matched by prefix to a different directory of this home (for telling the
    /// user)?
    pub fn matched_by_prefix(&self, canon: &str, store: &str) -> Option<String> {
        let plain = self.local_dir_plain(&self.canonical_dir(canon), store);
        let got = self.local_dir(canon, store);
        (got != plain).then_some(got)
    }

    fn map_path(&self, path: &str, f: impl Fn(&str) -> String) -> String {
        if self.classes.is_empty() {
            return path.to_string();
        }
        let mut parts = path.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("projects"), Some(dir), rest) => {
                let d = f(dir);
                match rest {
                    Some(r) => format!("projects/{d}/{r}"),
                    None => format!("projects/{d}"),
                }
            }
            _ => path.to_string(),
        }
    }

    /// A home-relative path with its project directory made canonical.
    pub fn canonical_path(&self, path: &str) -> String {
        self.map_path(path, |d| self.canonical_dir(d))
    }

    /// A tree path with its project directory as `store` names it.
    pub fn local_path(&self, path: &str, store: &str) -> String {
        self.map_path(path, |d| self.local_dir(d, store))
    }

    /// A scanned (local) tree with canonical project names. A directory whose canonical name is
    /// also present as a directory of its own keeps its local name (no two directories are
    /// folded into one silently).
    pub fn canonicalize(&self, flat: &FlatTree) -> FlatTree {
        let c = self.rename_dirs(flat, |d| self.canonical_dir(d));
        PathMap::rename_cut(&c, &self.folds)
    }

    /// A canonical tree with `store`'s local project names.
    pub fn localize(&self, flat: &FlatTree, store: &str) -> FlatTree {
        self.rename_dirs(flat, |d| self.local_dir(d, store))
    }

    fn rename_dirs(&self, flat: &FlatTree, f: impl Fn(&str) -> String) -> FlatTree {
        if self.classes.is_empty() {
            return flat.clone();
        }
        // Project directories: `projects/<d>` entries of kind Dir, and `<d>` of deeper paths.
        let mut dirs: Vec<&str> = flat
            .iter()
            .filter_map(|(p, e)| {
                let r = p.strip_prefix("projects/")?;
                match r.split_once('/') {
                    Some((d, _)) => Some(d),
                    None => (e.kind == EntryKind::Dir).then_some(r),
                }
            })
            .collect();
        dirs.sort_unstable();
        dirs.dedup();
        let mut rename: BTreeMap<&str, String> = BTreeMap::new();
        for d in &dirs {
            let n = f(d);
            if n != *d && !dirs.contains(&n.as_str()) {
                rename.insert(d, n);
            }
        }
        if rename.is_empty() {
            return flat.clone();
        }
        let mut out = FlatTree::new();
        for (p, e) in flat {
            let mut parts = p.splitn(3, '/');
            let (top, dir, rest) = (parts.next(), parts.next(), parts.next());
            let is_dir_path = rest.is_some() || e.kind == EntryKind::Dir;
            match (top, dir.filter(|_| is_dir_path).and_then(|d| rename.get(d))) {
                (Some("projects"), Some(new)) => {
                    let mut e = e.clone();
                    let np = match rest {
                        Some(r) => format!("projects/{new}/{r}"),
                        None => {
                            e.name = new.clone();
                            format!("projects/{new}")
                        }
                    };
                    out.insert(np, e);
                }
                _ => {
                    out.insert(p.clone(), e.clone());
                }
            }
        }
        out
    }
}

/// Keep the later of two entries for one store (ties: the smaller prefix).
fn merge_entry(class: &mut BTreeMap<String, (String, i64)>, store: &str, v: (String, i64)) {
    match class.get(store) {
        Some(cur) if (cur.1, std::cmp::Reverse(&cur.0)) >= (v.1, std::cmp::Reverse(&v.0)) => {}
        _ => {
            class.insert(store.to_string(), v);
        }
    }
}

/// Parse a `--map LOCAL=REMOTE` argument (absolute paths) into encoded prefixes.
pub fn parse_map_arg(arg: &str) -> Result<(String, String), String> {
    let (l, r) = arg.split_once('=').ok_or_else(|| {
        format!("--map {arg:?}: expected LOCAL=REMOTE, e.g. /Users/me/code=/workspace")
    })?;
    let enc = |p: &str| -> Result<String, String> {
        let p = p.trim_end_matches('/');
        if !p.starts_with('/') || p.len() < 2 {
            return Err(format!(
                "--map {arg:?}: {p:?} is not an absolute directory path"
            ));
        }
        Ok(crate::live::encode_project_dir(p))
    };
    Ok((enc(l)?, enc(r)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Entry;

    fn file(name: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: EntryKind::File,
            size: 1,
            exec: false,
            id: None,
            target: vec![],
        }
    }

    fn laptop_gpu() -> PathMap {
        let mut m = PathMap::default();
        m.add_rule("L", "-Users-me-code", "G", "-workspace", 1);
        m
    }

    #[test]
    fn translates_both_ways_at_component_boundaries() {
        let m = laptop_gpu();
        assert_eq!(m.canonical_dir("-workspace-app"), "-Users-me-code-app");
        assert_eq!(m.canonical_dir("-Users-me-code-app"), "-Users-me-code-app");
        assert_eq!(m.canonical_dir("-workspaces-x"), "-workspaces-x");
        assert_eq!(m.local_dir("-Users-me-code-app", "G"), "-workspace-app");
        assert_eq!(m.local_dir("-Users-me-code-app", "L"), "-Users-me-code-app");
        // a third machine without a rule sees canonical names
        assert_eq!(m.local_dir("-workspace-app", "H"), "-Users-me-code-app");
        assert_eq!(
            m.local_path("projects/-Users-me-code-app/s.jsonl", "G"),
            "projects/-workspace-app/s.jsonl"
        );
        assert_eq!(m.local_path("todos/x.json", "G"), "todos/x.json");
    }

    #[test]
    fn union_is_symmetric_and_joins_classes() {
        let a = laptop_gpu();
        let mut b = PathMap::default();
        b.add_rule("G", "-workspace", "H", "-data", 2);
        let (ab, ba) = (a.union(&b), b.union(&a));
        assert_eq!(ab, ba);
        assert_eq!(ab.classes().len(), 1, "{ab:?}");
        assert_eq!(ab.local_dir("-workspace-x", "H"), "-data-x");
        assert_eq!(ab.local_dir("-data-x", "L"), "-Users-me-code-x");
        // a later rule for the same store is a map change
        let mut c = ab.clone();
        c.add_rule("G", "-scratch", "L", "-Users-me-code", 5);
        assert_eq!(c.local_dir("-Users-me-code-x", "G"), "-scratch-x");
        assert_eq!(c.union(&ab), ab.union(&c));
    }

    #[test]
    fn trees_are_renamed_without_folding_two_directories() {
        let m = laptop_gpu();
        let mut t = FlatTree::new();
        let mut d = file("-workspace-app");
        d.kind = EntryKind::Dir;
        t.insert("projects/-workspace-app".into(), d);
        t.insert("projects/-workspace-app/a.jsonl".into(), file("a.jsonl"));
        t.insert("settings.json".into(), file("settings.json"));
        let c = m.canonicalize(&t);
        assert!(c.contains_key("projects/-Users-me-code-app/a.jsonl"));
        assert_eq!(c["projects/-Users-me-code-app"].name, "-Users-me-code-app");
        assert_eq!(m.localize(&c, "G"), t);
        // both names present: neither is folded into the other
        let mut both = t.clone();
        both.insert(
            "projects/-Users-me-code-app/b.jsonl".into(),
            file("b.jsonl"),
        );
        let c = m.canonicalize(&both);
        assert!(c.contains_key("projects/-workspace-app/a.jsonl"));
    }

    /// Claude Code's cut: the first 200 characters, `-`, a hash.
    fn cut(name: &str, hash: &str) -> String {
        format!("{}-{hash}", &name[..MAX_DIR_NAME])
    }

    #[test]
    fn names_cut_at_200_characters_meet_by_prefix() {
        let m = laptop_gpu();
        let tail = format!("-deep{}", "-x1y2z3".repeat(40));
        let l = cut(&format!("-Users-me-code{tail}"), "h1a2");
        let g = cut(&format!("-workspace{tail}"), "g9b8");
        // in canonical form both are cut names of one project: they fold into one
        let cg = m.canonical_dir(&g);
        let folds = m.fold_cut_names([l.as_str(), cg.as_str()]);
        let least = l.clone().min(cg.clone());
        let other = if least == l { &cg } else { &l };
        assert_eq!(folds.get(other.as_str()), Some(&least), "{folds:?}");
        assert_eq!(folds.len(), 1);
        // applied on the GPU box, the folded name is the GPU box's own directory
        let mut on_gpu = m.clone();
        on_gpu.local_dirs = vec![g.clone(), "-workspace-app".into()];
        assert_eq!(on_gpu.local_dir(&least, "G"), g);
        assert!(on_gpu.matched_by_prefix(&least, "G").is_some() || least == cg);
        // unrelated short names never fold, nor do cut names of other projects
        let other_cut = cut(&format!("-Users-me-code-other{tail}"), "h3");
        assert!(m
            .fold_cut_names(["-a-b", "-a-c", l.as_str(), other_cut.as_str()])
            .is_empty());
    }

    #[test]
    fn parses_map_arguments() {
        assert_eq!(
            parse_map_arg("/Users/me/code=/workspace/").unwrap(),
            ("-Users-me-code".into(), "-workspace".into())
        );
        assert!(parse_map_arg("code=/w").is_err());
        assert!(parse_map_arg("/a").is_err());
    }
}
