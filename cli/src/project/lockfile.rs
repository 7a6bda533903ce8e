//! `ferry.lock`: the exact content a project uses.
//!
//! ```toml
//! version = 1
//!
//! [[package]]                     # from ferry.toml [dependencies]; `ferry install`
//! name = "acme:http-router"
//! requirement = "^1.2"
//! version = "1.4.0"
//! digest = "sha256:…"             # the wkg.lock / OCI spelling of the content
//! cid = "bafkrei…"                # the same 32 bytes as a CIDv1 (raw, sha2-256)
//!
//! [[wit]]                         # from the packages wit/ uses; `ferry wit fetch`
//! name = "wasi:io"
//! requirement = "=0.2.0"
//! …
//! ```
//!
//! Entries are sorted (by name, then requirement, then version) so the file diffs
//! well and two runs that resolve the same things write the same bytes. Reading
//! checks every entry on its own (names, versions, the digest against the CID, the
//! version against its requirement) and refuses the whole file when one is wrong:
//! a hand edit that changed a version but not its digest must not install anything.

use std::collections::BTreeSet;

use ferry_protocol::{ContentId, PackageName};
use semver::Version;
use serde::{Deserialize, Serialize};

use super::{Requirement, label, toml_error};

/// The only lock format version this build reads and writes.
pub const LOCK_VERSION: u32 = 1;
/// Most entries one lock may hold.
pub const MAX_LOCK_ENTRIES: usize = 10_000;

const HEADER: &str = "# ferry.lock: the exact content this project uses, written by `ferry lock`,\n\
# `ferry update` and `ferry wit fetch`. Do not edit: `ferry install` refuses entries\n\
# whose digest, CID, version and requirement do not agree.\n";

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The package.
    pub name: PackageName,
    /// The requirement it was resolved from.
    pub requirement: Requirement,
    /// The version it resolved to.
    pub version: Version,
    /// Its content.
    pub cid: ContentId,
}

impl Locked {
    /// `sha256:<hex>` of the content.
    pub fn digest(&self) -> String {
        self.cid.to_sha256()
    }

    /// `ns:name@version`.
    pub fn label(&self) -> String {
        label(&self.name, &self.version)
    }

    /// `ns:name@X.Y.Z`: the spec the node answers for exactly this version, yanked
    /// or not (never deleted).
    pub fn exact_spec(&self) -> String {
        self.label()
    }

    fn sort_key(&self) -> (PackageName, String, Version) {
        (
            self.name.clone(),
            self.requirement.as_str().to_string(),
            self.version.clone(),
        )
    }
}

/// A parsed, checked `ferry.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockFile {
    /// `[[package]]`: dependencies from ferry.toml.
    pub packages: Vec<Locked>,
    /// `[[wit]]`: WIT packages that wit/ uses, directly or through other packages.
    pub wit: Vec<Locked>,
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// `name` is not `ns:name`.
    #[error("`{0}` is not a package name (ns:name)")]
    Name(String),
    /// `requirement` does not parse.
    #[error("requirement `{0}` is not a version requirement")]
    Requirement(String),
    /// `version` is not semver.
    #[error("version `{0}` is not a semver version")]
    Version(String),
    /// The version is outside its requirement.
    #[error("version {version} does not satisfy its requirement {requirement}")]
    NotSatisfied {
        /// The locked version.
        version: Version,
        /// The locked requirement.
        requirement: String,
    },
    /// `digest` is not `sha256:<64 lowercase hex>`.
    #[error("digest `{0}` is not sha256:<64 lowercase hex digits>")]
    Digest(String),
    /// `cid` does not parse as a raw sha2-256 CIDv1.
    #[error("cid `{0}` is not a content id")]
    Cid(String),
    /// `cid` and `digest` name different bytes.
    #[error("cid {cid} and digest {digest} name different content")]
    Mismatch {
        /// The cid as written.
        cid: String,
        /// The digest as written.
        digest: String,
    },
    /// The same package and requirement twice.
    #[error("it is locked twice for the same requirement")]
    Duplicate,
}

/// Why `ferry.lock` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Not TOML, or not the shape above.
    #[error("{0}")]
    Syntax(String),
    /// Written by a newer Ferry.
    #[error("lock format version {0} is not supported (this ferry reads version {LOCK_VERSION})")]
    Version(u32),
    /// Too many entries.
    #[error("{0} entries, over the limit of {MAX_LOCK_ENTRIES}")]
    TooMany(usize),
    /// One entry is inconsistent.
    #[error(
        "[[{section}]] entry {name}: {problem} (was ferry.lock edited by hand? `ferry lock` rewrites it)"
    )]
    Entry {
        /// `package` or `wit`.
        section: &'static str,
        /// The entry's name (and version when readable).
        name: String,
        /// What is wrong.
        problem: EntryProblem,
    },
}

/// The lock does not lock what ferry.toml asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// A dependency has no entry.
    #[error("ferry.lock does not lock {name} {requirement} from ferry.toml: run `ferry lock`")]
    Missing {
        /// The dependency.
        name: PackageName,
        /// Its requirement in ferry.toml.
        requirement: String,
    },
    /// The lock has an entry ferry.toml no longer asks for (or asks differently).
    #[error(
        "ferry.lock locks {name} {requirement}, which ferry.toml does not ask for: run `ferry lock`"
    )]
    Extra {
        /// The package.
        name: PackageName,
        /// The locked requirement.
        requirement: String,
    },
}

#[derive(Serialize, Deserialize)]
struct RawLock {
    version: u32,
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
    packages: Vec<RawEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wit: Vec<RawEntry>,
}

#[derive(Serialize, Deserialize)]
struct RawEntry {
    name: String,
    requirement: String,
    version: String,
    digest: String,
    /// Optional when reading (it is the digest again); always written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cid: Option<String>,
}

/// Checks one raw entry.
fn entry(section: &'static str, raw: RawEntry) -> Result<Locked, LockError> {
    let fail = |name: &str, problem| LockError::Entry {
        section,
        name: name.to_string(),
        problem,
    };
    let name: PackageName = raw
        .name
        .parse()
        .map_err(|_| fail(&raw.name, EntryProblem::Name(raw.name.clone())))?;
    let version = Version::parse(&raw.version)
        .map_err(|_| fail(&raw.name, EntryProblem::Version(raw.version.clone())))?;
    let who = label(&name, &version);
    let requirement = Requirement::parse(&raw.requirement)
        .map_err(|_| fail(&who, EntryProblem::Requirement(raw.requirement.clone())))?;
    if !requirement.matches(&version) {
        return Err(fail(
            &who,
            EntryProblem::NotSatisfied {
                version,
                requirement: raw.requirement,
            },
        ));
    }
    let well_formed = raw.digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    let from_digest: ContentId = well_formed
        .then(|| raw.digest.parse().ok())
        .flatten()
        .ok_or_else(|| fail(&who, EntryProblem::Digest(raw.digest.clone())))?;
    if let Some(c) = &raw.cid {
        let cid: ContentId = c
            .parse()
            .map_err(|_| fail(&who, EntryProblem::Cid(c.clone())))?;
        if cid != from_digest {
            return Err(fail(
                &who,
                EntryProblem::Mismatch {
                    cid: c.clone(),
                    digest: raw.digest,
                },
            ));
        }
    }
    Ok(Locked {
        name,
        requirement,
        version,
        cid: from_digest,
    })
}

fn section(name: &'static str, raw: Vec<RawEntry>) -> Result<Vec<Locked>, LockError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let e = entry(name, r)?;
        if !seen.insert((e.name.clone(), e.requirement.as_str().to_string())) {
            return Err(LockError::Entry {
                section: name,
                name: e.label(),
                problem: EntryProblem::Duplicate,
            });
        }
        out.push(e);
    }
    out.sort_by_key(Locked::sort_key);
    Ok(out)
}

fn raw(e: &Locked) -> RawEntry {
    RawEntry {
        name: e.name.to_string(),
        requirement: e.requirement.as_str().to_string(),
        version: e.version.to_string(),
        digest: e.digest(),
        cid: Some(e.cid.to_string()),
    }
}

impl LockFile {
    /// Parses and checks `ferry.lock` text.
    pub fn parse(text: &str) -> Result<Self, LockError> {
        let raw: RawLock =
            toml::from_str(text).map_err(|e| LockError::Syntax(toml_error(text, &e)))?;
        if raw.version != LOCK_VERSION {
            return Err(LockError::Version(raw.version));
        }
        let n = raw.packages.len() + raw.wit.len();
        if n > MAX_LOCK_ENTRIES {
            return Err(LockError::TooMany(n));
        }
        Ok(Self {
            packages: section("package", raw.packages)?,
            wit: section("wit", raw.wit)?,
        })
    }

    /// The file's text: a header comment, then the sorted entries.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.packages.sort_by_key(Locked::sort_key);
        sorted.wit.sort_by_key(Locked::sort_key);
        let raw = RawLock {
            version: LOCK_VERSION,
            packages: sorted.packages.iter().map(raw).collect(),
            wit: sorted.wit.iter().map(raw).collect(),
        };
        // Serializing plain strings and integers cannot fail.
        let body = toml::to_string(&raw).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Checks that `[[package]]` locks exactly what `deps` (ferry.toml) asks for.
    pub fn check_against<'a>(
        &self,
        deps: impl IntoIterator<Item = (&'a PackageName, &'a Requirement)>,
    ) -> Result<(), Stale> {
        let wanted: BTreeSet<(PackageName, String)> = deps
            .into_iter()
            .map(|(n, r)| (n.clone(), r.as_str().to_string()))
            .collect();
        let locked: BTreeSet<(PackageName, String)> = self
            .packages
            .iter()
            .map(|e| (e.name.clone(), e.requirement.as_str().to_string()))
            .collect();
        if let Some((name, requirement)) = wanted.difference(&locked).next() {
            return Err(Stale::Missing {
                name: name.clone(),
                requirement: requirement.clone(),
            });
        }
        if let Some((name, requirement)) = locked.difference(&wanted).next() {
            return Err(Stale::Extra {
                name: name.clone(),
                requirement: requirement.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(name: &str, req: &str, version: &str, bytes: &[u8]) -> Locked {
        Locked {
            name: name.parse().expect("a name"),
            requirement: Requirement::parse(req).expect("a requirement"),
            version: Version::parse(version).expect("a version"),
            cid: ContentId::of(bytes),
        }
    }

    fn sample() -> LockFile {
        LockFile {
            packages: vec![
                locked("acme:zeta", "^2", "2.1.0", b"z"),
                locked("acme:alpha", "^1.2", "1.4.0", b"a"),
            ],
            wit: vec![locked("wasi:io", "=0.2.0", "0.2.0", b"io")],
        }
    }

    #[test]
    fn round_trips_sorted_and_deterministic() {
        let text = sample().to_toml();
        let back = LockFile::parse(&text).expect("our own lock parses");
        assert_eq!(back.packages[0].name.to_string(), "acme:alpha");
        assert_eq!(back.packages[1].name.to_string(), "acme:zeta");
        assert_eq!(back.wit.len(), 1);
        assert_eq!(back.to_toml(), text, "writing twice gives the same bytes");
        assert!(
            text.contains("[[package]]") && text.contains("[[wit]]"),
            "{text}"
        );
        assert!(text.contains(&format!("digest = \"{}\"", ContentId::of(b"a").to_sha256())));
        assert!(text.contains(&format!("cid = \"{}\"", ContentId::of(b"a"))));
    }

    #[test]
    fn refuses_inconsistent_edits() {
        let text = sample().to_toml();
        let err = |t: String| LockFile::parse(&t).expect_err("refused").to_string();
        // A version moved by hand out of its requirement.
        let e = err(text.replace("version = \"2.1.0\"", "version = \"3.0.0\""));
        assert!(
            e.contains("acme:zeta@3.0.0") && e.contains("does not satisfy"),
            "{e}"
        );
        // A digest changed without its cid.
        let other = ContentId::of(b"other").to_sha256();
        let e = err(text.replace(&ContentId::of(b"a").to_sha256(), &other));
        assert!(e.contains("name different content"), "{e}");
        // Garbage digests and names.
        let e = err(text.replace(&ContentId::of(b"z").to_sha256(), "sha256:12"));
        assert!(e.contains("sha256:12"), "{e}");
        let e = err(text.replace("acme:alpha", "Acme:Alpha"));
        assert!(e.contains("Acme:Alpha"), "{e}");
        // A duplicate entry.
        let e = err(format!(
            "{text}\n[[package]]\nname = \"acme:alpha\"\nrequirement = \"^1.2\"\nversion = \"1.2.0\"\ndigest = \"{}\"\n",
            ContentId::of(b"q").to_sha256()
        ));
        assert!(e.contains("twice"), "{e}");
        // A newer format.
        let e = err(text.replace("version = 1\n", "version = 2\n"));
        assert!(e.contains("version 2"), "{e}");
        assert!(err("[[package]\n".into()).contains("line 1"));
    }

    #[test]
    fn a_cid_is_optional_when_reading() {
        let d = ContentId::of(b"a").to_sha256();
        let text = format!(
            "version = 1\n[[package]]\nname = \"acme:a\"\nrequirement = \"^1\"\nversion = \"1.0.0\"\ndigest = \"{d}\"\n"
        );
        let lock = LockFile::parse(&text).expect("parses");
        assert_eq!(lock.packages[0].cid, ContentId::of(b"a"));
    }

    #[test]
    fn tells_a_stale_lock() {
        let lock = sample();
        let deps = |list: &[(&str, &str)]| -> Vec<(PackageName, Requirement)> {
            list.iter()
                .map(|(n, r)| {
                    (
                        n.parse().expect("a name"),
                        Requirement::parse(r).expect("a req"),
                    )
                })
                .collect()
        };
        let ok = deps(&[("acme:alpha", "1.2"), ("acme:zeta", "^2")]);
        assert_eq!(lock.check_against(ok.iter().map(|(n, r)| (n, r))), Ok(()));
        let changed = deps(&[("acme:alpha", "^1.3"), ("acme:zeta", "^2")]);
        let e = lock
            .check_against(changed.iter().map(|(n, r)| (n, r)))
            .expect_err("stale");
        assert!(matches!(e, Stale::Missing { .. }), "{e}");
        let fewer = deps(&[("acme:alpha", "^1.2")]);
        let e = lock
            .check_against(fewer.iter().map(|(n, r)| (n, r)))
            .expect_err("stale");
        assert!(e.to_string().contains("acme:zeta ^2"), "{e}");
    }
}
