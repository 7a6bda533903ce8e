//! What a user asks for: `ns:name`, `ns:name@req`, or a content id; and version resolution.

use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};

use crate::content_id::{ContentId, ContentIdError};
use crate::name::{NameError, PackageName};

/// Why a fetch target does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Bad package name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Bad version requirement.
    #[error("`{0}` is not a version requirement (e.g. 1.2.3, ^1.2, >=0.3, *)")]
    Req(String),
    /// Bad content id.
    #[error(transparent)]
    Content(#[from] ContentIdError),
}

/// Which versions of a package a user wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The newest version.
    Latest,
    /// Exactly this version (a bare `X.Y.Z`, as npm and wkg read it).
    Exact(Version),
    /// The newest version matching a requirement.
    Req(VersionReq),
}

impl Want {
    /// Parses the part after `@`. A bare full version means exactly that version;
    /// anything else is a semver requirement.
    pub fn parse(s: &str) -> Result<Self, SpecError> {
        let s = s.trim();
        if s.is_empty() || s == "*" || s == "latest" {
            return Ok(Want::Latest);
        }
        if let Ok(v) = Version::parse(s) {
            return Ok(Want::Exact(v));
        }
        VersionReq::parse(s)
            .map(Want::Req)
            .map_err(|_| SpecError::Req(s.to_string()))
    }

    /// Whether `v` satisfies this want. `Latest` skips prereleases, like `*`.
    pub fn matches(&self, v: &Version) -> bool {
        match self {
            Want::Latest => v.pre.is_empty(),
            Want::Exact(e) => e == v,
            Want::Req(r) => r.matches(v),
        }
    }

    /// The highest of `versions` that satisfies this want.
    pub fn resolve<'a>(
        &self,
        versions: impl IntoIterator<Item = &'a Version>,
    ) -> Option<&'a Version> {
        versions.into_iter().filter(|v| self.matches(v)).max()
    }
}

/// Written so that [`Want::parse`] reads it back as the same want: clients send specs
/// to the node as text, and an exact version written `=1.2.3` would come back as a
/// requirement, which skips yanked versions.
impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Latest => f.write_str("*"),
            Want::Exact(v) => write!(f, "{v}"),
            Want::Req(r) => write!(f, "{r}"),
        }
    }
}

/// A fetch target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A package and which of its versions.
    Package(PackageName, Want),
    /// Content by id.
    Content(ContentId),
}

impl FromStr for Spec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        if !s.contains(':') || s.starts_with("sha256:") {
            return Ok(Spec::Content(s.parse()?));
        }
        let (name, want) = match s.split_once('@') {
            Some((n, w)) => (n, Want::parse(w)?),
            None => (s, Want::Latest),
        };
        Ok(Spec::Package(name.parse()?, want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs(list: &[&str]) -> Vec<Version> {
        list.iter().map(|s| Version::parse(s).unwrap()).collect()
    }

    #[test]
    fn resolution_picks_highest_match() {
        let v = vs(&["1.0.0", "1.2.0", "1.4.1", "2.0.0", "2.1.0-rc.1"]);
        let r = |w: &str| Want::parse(w).unwrap().resolve(&v).map(|v| v.to_string());
        assert_eq!(r("").as_deref(), Some("2.0.0"));
        assert_eq!(r("^1.2").as_deref(), Some("1.4.1"));
        assert_eq!(r("1.2.0").as_deref(), Some("1.2.0"));
        assert_eq!(r("~1.2").as_deref(), Some("1.2.0"));
        assert_eq!(r(">=2.1.0-rc.0").as_deref(), Some("2.1.0-rc.1"));
        assert_eq!(r("^3"), None);
    }

    #[test]
    fn wants_survive_display_and_parse() {
        for w in ["", "1.2.3", "1.2.3-rc.1", "=1.2.3", "^1.2", "~1", ">=1, <2"] {
            let want = Want::parse(w).unwrap();
            assert_eq!(Want::parse(&want.to_string()), Ok(want), "{w}");
        }
        assert!(matches!(
            Want::parse(&Want::parse("1.2.3").unwrap().to_string()),
            Ok(Want::Exact(_))
        ));
    }

    #[test]
    fn specs_parse() {
        assert!(matches!(
            "acme:x@^1".parse::<Spec>(),
            Ok(Spec::Package(_, Want::Req(_)))
        ));
        assert!(matches!(
            "acme:x".parse::<Spec>(),
            Ok(Spec::Package(_, Want::Latest))
        ));
        let cid = ContentId::of(b"x");
        assert_eq!(cid.to_string().parse::<Spec>(), Ok(Spec::Content(cid)));
        assert_eq!(cid.to_sha256().parse::<Spec>(), Ok(Spec::Content(cid)));
        assert!("acme:x@not a req".parse::<Spec>().is_err());
        assert!("Acme:x".parse::<Spec>().is_err());
        assert!("garbage".parse::<Spec>().is_err());
    }
}
