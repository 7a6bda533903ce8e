//! Replication filters: which packages a node pins, and which subset a mirror follows.
//!
//! A [`Pattern`] is a glob over `namespace:name` (`acme:*`, `wasi:http`, `*:http-*`,
//! `*`). A [`Filter`] combines include and exclude patterns with limits on license,
//! signer and size. Filters are pure data: the node decides from them which gossip
//! topics to subscribe to ([`Filter::covers_namespace`]), which logs to sync
//! ([`Filter::covers_package`]) and which blobs to fetch and keep ([`Filter::admits`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::key::PublicKey;
use crate::name::PackageName;

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;

/// Why a pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty, too long, or with characters outside `a-z 0-9 - * :`.
    #[error(
        "`{0}` is not a package pattern: use lowercase letters, digits, `-`, `*` and one `:`, e.g. acme:* or wasi:http"
    )]
    Malformed(String),
}

/// A glob over package names: `*` matches any run of characters within its part.
/// A pattern without `:` other than `*` names a whole namespace (`acme` = `acme:*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern {
    namespace: String,
    name: String,
}

fn valid_part(p: &str) -> bool {
    !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '*')
}

/// Whether `text` matches the glob `pat`, where `*` matches any (possibly empty) run.
fn glob(pat: &str, text: &str) -> bool {
    let (p, t) = (pat.as_bytes(), text.as_bytes());
    // Iterative matcher with one backtrack point: linear in practice, no recursion,
    // so a hostile pattern cannot blow the stack.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl Pattern {
    /// The pattern that matches every package.
    pub fn all() -> Self {
        Self {
            namespace: "*".into(),
            name: "*".into(),
        }
    }

    /// Whether `package` matches.
    pub fn matches(&self, package: &PackageName) -> bool {
        glob(&self.namespace, package.namespace().as_str()) && glob(&self.name, package.name())
    }

    /// Whether packages of `namespace` can match (then its gossip topic is needed).
    pub fn matches_namespace(&self, namespace: &str) -> bool {
        glob(&self.namespace, namespace)
    }

    /// Whether the pattern matches every package of a namespace it matches.
    pub fn whole_namespace(&self) -> bool {
        self.name == "*"
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PatternError::Malformed(s.to_string());
        if s.len() > MAX_PATTERN_BYTES {
            return Err(err());
        }
        let (namespace, name) = match s.split_once(':') {
            Some((ns, n)) => (ns, n),
            None => (s, "*"),
        };
        if !valid_part(namespace) || !valid_part(name) {
            return Err(err());
        }
        Ok(Self {
            namespace: namespace.into(),
            name: name.into(),
        })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a filter needs to know about a release to decide on it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The package.
    pub package: &'a PackageName,
    /// Its SPDX license expression, if any.
    pub license: Option<&'a str>,
    /// The key that signed the release.
    pub signer: &'a PublicKey,
    /// Blob size in bytes.
    pub size: u64,
}

/// Why a filter leaves a release out (for `pin ls`, logs and `--json` output).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Miss {
    /// No include pattern matches, or an exclude pattern does.
    #[error("{0} is outside the filter's patterns")]
    Pattern(String),
    /// The license is not on the allowlist.
    #[error("{package}: license {license} is not on the filter's allowlist")]
    License {
        /// The package.
        package: String,
        /// Its license, or `none`.
        license: String,
    },
    /// The signer is not on the allowlist.
    #[error("{package}: signer {signer} is not on the filter's allowlist")]
    Signer {
        /// The package.
        package: String,
        /// The key.
        signer: PublicKey,
    },
    /// The blob is larger than allowed.
    #[error("{package}: {size} bytes is over the filter's {max} byte limit")]
    Size {
        /// The package.
        package: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
}

/// Include/exclude patterns plus optional limits. An empty `include` matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Packages to take.
    pub include: Vec<Pattern>,
    /// Packages to leave out even when included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Pattern>,
    /// If set, only releases whose license expression is one of these (compared
    /// exactly, e.g. `Apache-2.0`, `MIT OR Apache-2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licenses: Option<Vec<String>>,
    /// If set, only releases signed by one of these keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signers: Option<Vec<PublicKey>>,
    /// If set, only blobs at most this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

impl Filter {
    /// A filter taking exactly the packages `include` matches.
    pub fn new(include: Vec<Pattern>) -> Self {
        Self {
            include,
            ..Self::default()
        }
    }

    /// Whether the package's log is wanted (patterns only).
    pub fn covers_package(&self, package: &PackageName) -> bool {
        self.include.iter().any(|p| p.matches(package))
            && !self.exclude.iter().any(|p| p.matches(package))
    }

    /// Whether some package of `namespace` may be wanted, i.e. whether its gossip topic
    /// is needed. An exclude pattern removes a namespace only when it excludes all of it.
    pub fn covers_namespace(&self, namespace: &str) -> bool {
        self.include.iter().any(|p| p.matches_namespace(namespace))
            && !self
                .exclude
                .iter()
                .any(|p| p.whole_namespace() && p.matches_namespace(namespace))
    }

    /// Whether a release is wanted: patterns, then license, signer and size limits.
    pub fn admits(&self, c: &Candidate<'_>) -> Result<(), Miss> {
        let package = c.package.to_string();
        if !self.covers_package(c.package) {
            return Err(Miss::Pattern(package));
        }
        if let Some(allowed) = &self.licenses
            && !c.license.is_some_and(|l| allowed.iter().any(|a| a == l))
        {
            return Err(Miss::License {
                package,
                license: c.license.unwrap_or("none").to_string(),
            });
        }
        if let Some(keys) = &self.signers
            && !keys.contains(c.signer)
        {
            return Err(Miss::Signer {
                package,
                signer: *c.signer,
            });
        }
        if let Some(max) = self.max_size
            && c.size > max
        {
            return Err(Miss::Size {
                package,
                size: c.size,
                max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(s: &str) -> PackageName {
        s.parse().expect("valid package name")
    }

    fn pat(s: &str) -> Pattern {
        s.parse().expect("valid pattern")
    }

    #[test]
    fn globs_match_within_their_part() {
        assert!(pat("acme:*").matches(&pkg("acme:router")));
        assert!(!pat("acme:*").matches(&pkg("acmex:router")));
        assert!(pat("acme").matches(&pkg("acme:router")));
        assert!(pat("wasi:http").matches(&pkg("wasi:http")));
        assert!(!pat("wasi:http").matches(&pkg("wasi:http-extra")));
        assert!(pat("*:http-*").matches(&pkg("acme:http-router")));
        assert!(!pat("*:http-*").matches(&pkg("acme:router-http")));
        assert!(pat("*").matches(&pkg("x:y")));
        assert!(pat("a*c:*b*").matches(&pkg("abbc:xbx")));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "Acme:*", "acme:", ":x", "a:b:c", "acme/x", "a b", "é:x"] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad:?} should not parse");
        }
        let long = "a".repeat(MAX_PATTERN_BYTES + 1);
        assert!(long.parse::<Pattern>().is_err());
    }

    #[test]
    fn hostile_globs_finish() {
        let p = pat(&format!("x:{}b", "*a".repeat(30)));
        assert!(!p.matches(&pkg(&format!("x:{}", "a".repeat(60)))));
        assert!(p.matches(&pkg(&format!("x:{}b", "a".repeat(60)))));
    }

    #[test]
    fn filter_applies_excludes_and_limits() {
        let key = crate::Keypair::from_seed([7; 32]).public();
        let other = crate::Keypair::from_seed([8; 32]).public();
        let mut f = Filter::new(vec![pat("acme:*"), pat("wasi:http")]);
        f.exclude = vec![pat("acme:secret-*")];
        assert!(f.covers_namespace("acme") && f.covers_namespace("wasi"));
        assert!(!f.covers_namespace("other"));
        assert!(!f.covers_package(&pkg("wasi:io")));
        assert!(!f.covers_package(&pkg("acme:secret-sauce")));
        let p = pkg("acme:router");
        let c = Candidate {
            package: &p,
            license: Some("MIT"),
            signer: &key,
            size: 10,
        };
        assert_eq!(f.admits(&c), Ok(()));
        f.licenses = Some(vec!["Apache-2.0".into()]);
        assert!(matches!(f.admits(&c), Err(Miss::License { .. })));
        f.licenses = None;
        f.signers = Some(vec![other]);
        assert!(matches!(f.admits(&c), Err(Miss::Signer { .. })));
        f.signers = Some(vec![key]);
        f.max_size = Some(9);
        assert!(matches!(f.admits(&c), Err(Miss::Size { .. })));
        let whole = Filter {
            exclude: vec![pat("acme")],
            ..Filter::new(vec![pat("*")])
        };
        assert!(!whole.covers_namespace("acme") && whole.covers_namespace("x"));
    }

    #[test]
    fn filters_round_trip_through_cbor() {
        let f = Filter::new(vec![pat("acme")]);
        let mut buf = Vec::new();
        ciborium::into_writer(&f, &mut buf).expect("encode");
        let back: Filter = ciborium::from_reader(buf.as_slice()).expect("decode");
        assert_eq!(back, f);
        assert_eq!(back.include[0].to_string(), "acme:*");
    }
}
