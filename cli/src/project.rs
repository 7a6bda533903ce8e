//! A Ferry project on disk: `ferry.toml` says what the project wants, `ferry.lock`
//! says exactly what it got (version and content digest of every package), and
//! `ferry install` / `ferry wit fetch` fill the project's folders from the lock.
//!
//! Everything in this module is pure (no network, no clock, no file system except
//! the small write helper), so the decisions `lock`, `update`, `install` and
//! `wit fetch` take are unit tested here; the commands in `cmd/` do the I/O.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ferry_protocol::spec::SpecError;
use ferry_protocol::{PackageName, Want};
use semver::{Op, Version};

pub mod lockfile;
pub mod manifest;
pub mod plan;
pub mod witdeps;
pub mod wkg;

/// The project file.
pub const MANIFEST_FILE: &str = "ferry.toml";
/// The lock file, beside the project file.
pub const LOCK_FILE: &str = "ferry.lock";
/// Largest `ferry.toml`, `ferry.lock` or `wkg.lock` read, in bytes: these are small
/// text files, and a bound keeps a stray multi-gigabyte file from being slurped.
pub const MAX_PROJECT_FILE_BYTES: u64 = 4 << 20;

/// A version requirement as written in `ferry.toml` or `ferry.lock`, with its
/// normal spelling (`1.2` and `^1.2` are the same requirement and both read `^1.2`;
/// a bare `1.2.3` means exactly that version and reads `=1.2.3`, as in npm and wkg).
/// Two requirements are equal when their normal spellings are.
#[derive(Debug, Clone)]
pub struct Requirement {
    want: Want,
    text: String,
}

impl Requirement {
    /// Parses a requirement the way `ferry fetch` reads the part after `@`.
    pub fn parse(s: &str) -> Result<Self, SpecError> {
        let want = Want::parse(s)?;
        let text = spelling(&want);
        Ok(Self { want, text })
    }

    /// Exactly `version` (how a WIT `use wasi:io/streams@0.2.0` is read, as wkg does).
    pub fn exact(version: &Version) -> Self {
        let want = Want::Exact(version.clone());
        let text = spelling(&want);
        Self { want, text }
    }

    /// Whether `v` satisfies the requirement.
    pub fn matches(&self, v: &Version) -> bool {
        self.want.matches(v)
    }

    /// The normal spelling.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The one version this requirement allows, if it names exactly one.
    pub fn exact_version(&self) -> Option<Version> {
        match &self.want {
            Want::Exact(v) => Some(v.clone()),
            Want::Req(r) => match r.comparators.as_slice() {
                [c] if c.op == Op::Exact => Some(Version {
                    major: c.major,
                    minor: c.minor?,
                    patch: c.patch?,
                    pre: c.pre.clone(),
                    build: semver::BuildMetadata::EMPTY,
                }),
                _ => None,
            },
            Want::Latest => None,
        }
    }

    /// The spec to ask the node for. An exact requirement is sent as a bare version,
    /// which the node resolves even when that version is yanked (saying so), as it
    /// does for `ferry fetch ns:name@1.2.3`; any other requirement skips yanked ones.
    pub fn spec(&self, name: &PackageName) -> String {
        match self.exact_version() {
            Some(v) => format!("{name}@{v}"),
            None => format!("{name}@{}", self.text),
        }
    }
}

/// The normal spelling of a want: an exact version is written `=X.Y.Z` (as wkg.lock
/// writes it, and unlike a spec sent to the node, where a bare version means exact).
fn spelling(want: &Want) -> String {
    match want {
        Want::Exact(v) => format!("={v}"),
        other => other.to_string(),
    }
}

impl PartialEq for Requirement {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Requirement {}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `ns:name@version`, how every message names one locked package.
pub fn label(name: &PackageName, version: &Version) -> String {
    format!("{name}@{version}")
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
/// so a reader (or a crash) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Reads a small project file, refusing one over [`MAX_PROJECT_FILE_BYTES`].
pub fn read_small(path: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_PROJECT_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is {len} bytes, over the {MAX_PROJECT_FILE_BYTES}-byte limit"),
        ));
    }
    std::fs::read_to_string(path)
}

/// The 1-based line of byte `offset` in `text`, for one-line TOML error messages.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.bytes().filter(|b| *b == b'\n').count() + 1)
}

/// A `toml` error as one line: `line N: message`.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => format!("line {}: {msg}", line_of(text, span.start)),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("a version")
    }

    #[test]
    fn requirements_have_one_spelling() {
        let r = |s: &str| Requirement::parse(s).expect("a requirement");
        assert_eq!(r("1.2").as_str(), "^1.2");
        assert_eq!(r("^1.2"), r("1.2"));
        assert_eq!(r("1.2.3").as_str(), "=1.2.3");
        assert_eq!(r("=1.2.3").as_str(), "=1.2.3");
        assert_eq!(
            r("=1.2.3"),
            r("1.2.3"),
            "the lock's spelling equals ferry.toml's"
        );
        assert_eq!(r("*").as_str(), "*");
        assert_eq!(Requirement::exact(&v("0.2.0")).as_str(), "=0.2.0");
        assert!(Requirement::parse("not a req").is_err());
    }

    #[test]
    fn exact_requirements_are_asked_as_bare_versions() {
        let name: PackageName = "acme:x".parse().expect("a name");
        let r = |s: &str| Requirement::parse(s).expect("a requirement");
        assert_eq!(r("=1.2.3").spec(&name), "acme:x@1.2.3");
        assert_eq!(r("1.2.3").spec(&name), "acme:x@1.2.3");
        assert_eq!(r("=1.2.3-rc.1").spec(&name), "acme:x@1.2.3-rc.1");
        assert_eq!(r("^1.2").spec(&name), "acme:x@^1.2");
        assert_eq!(r("=1.2").spec(&name), "acme:x@=1.2");
        assert_eq!(r("*").spec(&name), "acme:x@*");
        assert!(r("^1.2").matches(&v("1.9.0")));
        assert!(!r("^1.2").matches(&v("2.0.0")));
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
