//! What `ferry lock` and `ferry update` do with each dependency, decided before any
//! network call: keep the locked version (reproducible builds), or ask the registry.
//!
//! `ferry lock` keeps every locked version that still satisfies the requirement in
//! ferry.toml, even one yanked since (yanking stops new resolutions, it does not
//! break existing locks); only a new dependency, a changed requirement, or
//! `ferry update [PACKAGE]` makes it resolve again.

use std::collections::{BTreeMap, BTreeSet};

use ferry_protocol::PackageName;
use serde::Serialize;

use super::Requirement;
use super::lockfile::Locked;

/// Which dependencies to resolve again even though their lock still fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// None (`ferry lock`).
    Nothing,
    /// All (`ferry update`).
    All,
    /// These (`ferry update acme:x acme:y`).
    Only(BTreeSet<PackageName>),
}

impl Update {
    fn covers(&self, name: &PackageName) -> bool {
        match self {
            Update::Nothing => false,
            Update::All => true,
            Update::Only(set) => set.contains(name),
        }
    }
}

/// What to do for one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The lock still fits: keep it.
    Keep(Locked),
    /// Ask the registry for the highest matching non-yanked version.
    Resolve {
        /// The dependency.
        name: PackageName,
        /// Its requirement in ferry.toml.
        requirement: Requirement,
        /// What was locked before, if anything.
        previous: Option<Locked>,
    },
}

/// One step per dependency of ferry.toml, in name order. Lock entries for packages
/// ferry.toml no longer lists get no step: they are dropped.
pub fn steps(
    deps: &BTreeMap<PackageName, Requirement>,
    locked: &[Locked],
    update: &Update,
) -> Vec<Step> {
    deps.iter()
        .map(|(name, requirement)| {
            let previous = locked.iter().find(|e| &e.name == name);
            match previous {
                Some(e)
                    if e.requirement == *requirement
                        && requirement.matches(&e.version)
                        && !update.covers(name) =>
                {
                    Step::Keep(e.clone())
                }
                _ => Step::Resolve {
                    name: name.clone(),
                    requirement: requirement.clone(),
                    previous: previous.cloned(),
                },
            }
        })
        .collect()
}

/// How one package's lock changed, for the command's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Newly locked.
    Added,
    /// No longer locked.
    Removed,
    /// Moved to another version (or the same version under a new requirement).
    Updated,
    /// As before.
    Unchanged,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The package.
    pub package: String,
    /// What happened.
    pub change: ChangeKind,
    /// The requirement now (None when removed).
    pub requirement: Option<String>,
    /// The version before.
    pub from: Option<String>,
    /// The version now.
    pub to: Option<String>,
}

/// Compares two `[[package]]` sections by package name.
pub fn changes(old: &[Locked], new: &[Locked]) -> Vec<Change> {
    let by_name = |l: &[Locked]| -> BTreeMap<PackageName, Locked> {
        l.iter().map(|e| (e.name.clone(), e.clone())).collect()
    };
    let (old, new) = (by_name(old), by_name(new));
    let names: BTreeSet<&PackageName> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let (o, n) = (old.get(name), new.get(name));
            let change = match (o, n) {
                (None, _) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(o), Some(n)) if o == n => ChangeKind::Unchanged,
                _ => ChangeKind::Updated,
            };
            Change {
                package: name.to_string(),
                change,
                requirement: n.map(|e| e.requirement.to_string()),
                from: o.map(|e| e.version.to_string()),
                to: n.map(|e| e.version.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::ContentId;
    use semver::Version;

    fn name(s: &str) -> PackageName {
        s.parse().expect("a name")
    }

    fn req(s: &str) -> Requirement {
        Requirement::parse(s).expect("a requirement")
    }

    fn locked(n: &str, r: &str, v: &str) -> Locked {
        Locked {
            name: name(n),
            requirement: req(r),
            version: Version::parse(v).expect("a version"),
            cid: ContentId::of(v.as_bytes()),
        }
    }

    fn deps(list: &[(&str, &str)]) -> BTreeMap<PackageName, Requirement> {
        list.iter().map(|(n, r)| (name(n), req(r))).collect()
    }

    #[test]
    fn lock_keeps_what_still_fits() {
        let lock = [
            locked("acme:a", "^1.2", "1.3.0"),
            locked("acme:b", "^2", "2.0.0"),
        ];
        let s = steps(
            &deps(&[("acme:a", "^1.2"), ("acme:b", "^2")]),
            &lock,
            &Update::Nothing,
        );
        assert_eq!(
            s,
            vec![Step::Keep(lock[0].clone()), Step::Keep(lock[1].clone())]
        );
    }

    #[test]
    fn new_and_changed_requirements_resolve() {
        let lock = [
            locked("acme:a", "^1.2", "1.3.0"),
            locked("acme:gone", "^1", "1.0.0"),
        ];
        let s = steps(
            &deps(&[("acme:a", "^1.4"), ("acme:new", "*")]),
            &lock,
            &Update::Nothing,
        );
        assert_eq!(
            s,
            vec![
                Step::Resolve {
                    name: name("acme:a"),
                    requirement: req("^1.4"),
                    previous: Some(lock[0].clone()),
                },
                Step::Resolve {
                    name: name("acme:new"),
                    requirement: req("*"),
                    previous: None,
                },
            ],
            "acme:gone is no longer listed, so it gets no step"
        );
    }

    #[test]
    fn update_moves_only_what_it_names() {
        let lock = [
            locked("acme:a", "^1", "1.0.0"),
            locked("acme:b", "^1", "1.0.0"),
        ];
        let d = deps(&[("acme:a", "^1"), ("acme:b", "^1")]);
        let only = Update::Only([name("acme:b")].into_iter().collect());
        let s = steps(&d, &lock, &only);
        assert!(matches!(&s[0], Step::Keep(e) if e.name == name("acme:a")));
        assert!(matches!(&s[1], Step::Resolve { name: n, .. } if *n == name("acme:b")));
        let all = steps(&d, &lock, &Update::All);
        assert!(all.iter().all(|s| matches!(s, Step::Resolve { .. })));
    }

    #[test]
    fn reports_changes_by_name() {
        let old = [
            locked("acme:a", "^1", "1.0.0"),
            locked("acme:b", "^1", "1.0.0"),
        ];
        let new = [
            locked("acme:a", "^1", "1.1.0"),
            locked("acme:c", "^3", "3.0.0"),
        ];
        let c = changes(&old, &new);
        let kinds: Vec<(&str, &ChangeKind)> =
            c.iter().map(|c| (c.package.as_str(), &c.change)).collect();
        assert_eq!(
            kinds,
            [
                ("acme:a", &ChangeKind::Updated),
                ("acme:b", &ChangeKind::Removed),
                ("acme:c", &ChangeKind::Added)
            ]
        );
        assert_eq!(c[0].from.as_deref(), Some("1.0.0"));
        assert_eq!(c[0].to.as_deref(), Some("1.1.0"));
        assert_eq!(changes(&old, &old)[0].change, ChangeKind::Unchanged);
    }
}
