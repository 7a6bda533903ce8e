//! Package names: `namespace:name`, each a WIT kebab-case label.
//!
//! The grammar follows WIT package identifiers, restricted to lowercase so that one
//! package can never be registered twice under names that differ only in case:
//! a label is one or more words joined by `-`, and a word is `[a-z][a-z0-9]*`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest label (namespace or name) accepted, in bytes. Keeps records and topics small.
pub const MAX_LABEL_BYTES: usize = 64;

/// Why a string is not a package name or namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No `:` separating namespace and name.
    #[error(
        "package name `{0}` has no namespace: write it as namespace:name, e.g. acme:http-router"
    )]
    MissingNamespace(String),
    /// A label breaks the kebab-case grammar.
    #[error(
        "`{label}` in `{input}` is not a lowercase kebab-case label (words of a-z and 0-9, each starting with a letter, joined by single dashes)"
    )]
    BadLabel {
        /// The whole input.
        input: String,
        /// The offending label.
        label: String,
    },
    /// A label is longer than [`MAX_LABEL_BYTES`].
    #[error("`{0}` is longer than {MAX_LABEL_BYTES} bytes")]
    TooLong(String),
}

/// Checks one label (a namespace or a package's own name).
pub fn check_label(label: &str, input: &str) -> Result<(), NameError> {
    if label.len() > MAX_LABEL_BYTES {
        return Err(NameError::TooLong(label.to_string()));
    }
    let ok = !label.is_empty()
        && label.split('-').all(|word| {
            let mut chars = word.chars();
            matches!(chars.next(), Some('a'..='z'))
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(NameError::BadLabel {
            input: input.to_string(),
            label: label.to_string(),
        })
    }
}

/// A namespace, such as `wasi` or `acme`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace(String);

impl Namespace {
    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        check_label(s, s)?;
        Ok(Self(s.to_string()))
    }
}

impl TryFrom<String> for Namespace {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<Namespace> for String {
    fn from(n: Namespace) -> String {
        n.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A package name `namespace:name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName {
    namespace: Namespace,
    name: String,
}

impl PackageName {
    /// The namespace part.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The name part, after the `:`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for PackageName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (ns, name) = s
            .split_once(':')
            .ok_or_else(|| NameError::MissingNamespace(s.to_string()))?;
        check_label(ns, s)?;
        check_label(name, s)?;
        Ok(Self {
            namespace: Namespace(ns.to_string()),
            name: name.to_string(),
        })
    }
}

impl TryFrom<String> for PackageName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<PackageName> for String {
    fn from(n: PackageName) -> String {
        n.to_string()
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_wit_style_names() {
        for ok in ["wasi:http", "acme:image-resize", "a1:b2-c3", "x:y"] {
            let n: PackageName = ok.parse().unwrap();
            assert_eq!(n.to_string(), ok);
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "wasi",
            "wasi:",
            ":http",
            "Wasi:http",
            "wasi:HTTP",
            "wasi:http-",
            "wasi:-http",
            "wasi:ht--tp",
            "wasi:1http",
            "wasi:http:x",
            "wasi:h_t",
            "wasi:h t",
            "",
        ] {
            assert!(bad.parse::<PackageName>().is_err(), "{bad} parsed");
        }
        let long = format!("a:{}", "b".repeat(MAX_LABEL_BYTES + 1));
        assert!(matches!(
            long.parse::<PackageName>(),
            Err(NameError::TooLong(_))
        ));
    }

    #[test]
    fn serde_checks_grammar() {
        let mut buf = Vec::new();
        ciborium::into_writer("Bad:Name", &mut buf).unwrap();
        assert!(ciborium::from_reader::<PackageName, _>(buf.as_slice()).is_err());
    }
}
