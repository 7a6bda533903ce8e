//! Pins: the filters a node replicates by, and what follows from them.
//!
//! A pin is a [`Filter`] with exactly one include pattern, which names it (`ferry pin
//! add acme:*` … `ferry pin rm acme:*`). A node's [`Pins`] decide three things:
//!
//! - which logs it follows ([`Pins::follows_log`]): always the operator log and the
//!   attester logs (they are small and every check needs the operator log); package logs
//!   only when a pin covers the package;
//! - which gossip topics it subscribes to ([`Pins::follows_namespace`]);
//! - which blobs it fetches, provides and keeps on its own ([`Pins::admits`]).
//!
//! A node without pins follows every log (index only) and fetches blobs only when its
//! user asks: an empty set is "follow everything, pin nothing", not "follow nothing",
//! so that a fresh node can still search the whole network.

use serde::{Deserialize, Serialize};

use crate::filter::{Candidate, Filter, Miss, Pattern};
use crate::name::PackageName;
use crate::record::{ATTEST_LOG_PREFIX, OPERATOR_LOG};

/// Why a filter cannot be a pin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// A pin has exactly one include pattern, which names it.
    #[error("a pin has exactly one package pattern, this filter has {0}")]
    Patterns(usize),
    /// A license on the allowlist is not an SPDX expression.
    #[error("pin {pattern}: `{license}` is not an SPDX license expression ({why})")]
    License {
        /// The pin's pattern.
        pattern: String,
        /// The license given.
        license: String,
        /// What the SPDX parser said.
        why: String,
    },
}

/// One pin: a filter named by its single include pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Filter", into = "Filter")]
pub struct Pin {
    filter: Filter,
}

impl Pin {
    /// A pin taking every package `pattern` matches, with no limits.
    pub fn new(pattern: Pattern) -> Self {
        Self {
            filter: Filter::new(vec![pattern]),
        }
    }

    /// The pattern that names this pin.
    pub fn pattern(&self) -> &Pattern {
        &self.filter.include[0]
    }

    /// The whole filter (patterns and limits).
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

impl TryFrom<Filter> for Pin {
    type Error = PinError;
    fn try_from(filter: Filter) -> Result<Self, PinError> {
        if filter.include.len() != 1 {
            return Err(PinError::Patterns(filter.include.len()));
        }
        // Releases are compared with the allowlist exactly; an entry that is not an
        // expression could never match a release a network with an SPDX policy accepts.
        for l in filter.licenses.iter().flatten() {
            if let Err(e) = spdx::Expression::parse(l) {
                return Err(PinError::License {
                    pattern: filter.include[0].to_string(),
                    license: l.clone(),
                    why: e.reason.to_string(),
                });
            }
        }
        Ok(Self { filter })
    }
}

impl From<Pin> for Filter {
    fn from(p: Pin) -> Filter {
        p.filter
    }
}

/// The set of a node's pins, ordered by pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    pins: Vec<Pin>,
}

impl Pins {
    /// A set from pins in any order; a later pin with an already seen pattern replaces
    /// the earlier one.
    pub fn new(pins: impl IntoIterator<Item = Pin>) -> Self {
        let mut out = Self::default();
        for p in pins {
            out.insert(p);
        }
        out
    }

    /// Adds `pin`, replacing a pin with the same pattern. Returns the replaced pin.
    pub fn insert(&mut self, pin: Pin) -> Option<Pin> {
        match self
            .pins
            .binary_search_by(|p| p.pattern().cmp(pin.pattern()))
        {
            Ok(i) => Some(std::mem::replace(&mut self.pins[i], pin)),
            Err(i) => {
                self.pins.insert(i, pin);
                None
            }
        }
    }

    /// Removes the pin named `pattern`.
    pub fn remove(&mut self, pattern: &Pattern) -> Option<Pin> {
        let i = self
            .pins
            .binary_search_by(|p| p.pattern().cmp(pattern))
            .ok()?;
        Some(self.pins.remove(i))
    }

    /// Whether there is no pin (then the node follows everything and pins nothing).
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }

    /// The pins, ordered by pattern.
    pub fn iter(&self) -> impl Iterator<Item = &Pin> {
        self.pins.iter()
    }

    /// Whether the node follows `log` (gossip and sync). Names that are neither the
    /// operator log, an attester log nor a package name are never followed.
    pub fn follows_log(&self, log: &str) -> bool {
        if log == OPERATOR_LOG || log.starts_with(ATTEST_LOG_PREFIX) {
            return true;
        }
        match log.parse::<PackageName>() {
            Ok(p) => self.follows_package(&p),
            Err(_) => false,
        }
    }

    /// Whether the node follows the log of `package`.
    pub fn follows_package(&self, package: &PackageName) -> bool {
        self.is_empty() || self.pins.iter().any(|p| p.filter.covers_package(package))
    }

    /// Whether the node subscribes to the gossip topic of `namespace`.
    pub fn follows_namespace(&self, namespace: &str) -> bool {
        self.is_empty()
            || self
                .pins
                .iter()
                .any(|p| p.filter.covers_namespace(namespace))
    }

    /// The first pin (in pattern order) that admits a release, or why the last pin
    /// that covers its package leaves it out. `Err(None)` when no pin covers it (and
    /// always when there are no pins: an empty set pins nothing).
    pub fn admits(&self, c: &Candidate<'_>) -> Result<&Pin, Option<Miss>> {
        let mut why = None;
        for p in &self.pins {
            match p.filter.admits(c) {
                Ok(()) => return Ok(p),
                Err(Miss::Pattern(_)) => {}
                Err(m) => why = Some(m),
            }
        }
        Err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    fn pat(s: &str) -> Pattern {
        s.parse().expect("valid pattern")
    }

    fn pkg(s: &str) -> PackageName {
        s.parse().expect("valid package")
    }

    #[test]
    fn no_pins_follow_everything_and_pin_nothing() {
        let pins = Pins::default();
        assert!(pins.follows_log("acme:x") && pins.follows_namespace("acme"));
        let key = Keypair::from_seed([1; 32]).public();
        let p = pkg("acme:x");
        let c = Candidate {
            package: &p,
            license: None,
            signer: &key,
            size: 1,
        };
        assert_eq!(pins.admits(&c), Err(None));
    }

    #[test]
    fn pins_follow_only_what_they_cover() {
        let mut acme = Pin::new(pat("acme:*")).filter().clone();
        acme.exclude = vec![pat("acme:secret")];
        let pins = Pins::new([
            Pin::try_from(acme).expect("one pattern"),
            Pin::new(pat("wasi:http")),
        ]);
        assert!(pins.follows_log(OPERATOR_LOG));
        assert!(pins.follows_log("~attest/abc"));
        assert!(pins.follows_log("acme:router") && !pins.follows_log("acme:secret"));
        assert!(pins.follows_log("wasi:http") && !pins.follows_log("wasi:io"));
        assert!(!pins.follows_log("other:x") && !pins.follows_log("not a log"));
        assert!(pins.follows_namespace("wasi") && !pins.follows_namespace("other"));
    }

    #[test]
    fn admits_names_the_pin_or_the_miss() {
        let key = Keypair::from_seed([1; 32]).public();
        let mut small = Filter::new(vec![pat("acme:*")]);
        small.max_size = Some(10);
        let mut pins = Pins::new([Pin::try_from(small).expect("one pattern")]);
        let p = pkg("acme:x");
        let big = Candidate {
            package: &p,
            license: None,
            signer: &key,
            size: 11,
        };
        assert!(matches!(pins.admits(&big), Err(Some(Miss::Size { .. }))));
        // A second, wider pin admits what the first refuses.
        pins.insert(Pin::new(pat("acme:x")));
        assert_eq!(
            pins.admits(&big).map(|p| p.pattern().to_string()),
            Ok("acme:x".into())
        );
        assert!(pins.remove(&pat("acme:x")).is_some());
        assert!(pins.remove(&pat("acme:x")).is_none());
        // Re-adding a pattern replaces its pin.
        let replaced = pins.insert(Pin::new(pat("acme:*")));
        assert_eq!(replaced.and_then(|p| p.filter().max_size), Some(10));
        assert_eq!(pins.iter().count(), 1);
    }

    #[test]
    fn a_pin_has_one_pattern() {
        let two = Filter::new(vec![pat("a"), pat("b")]);
        assert_eq!(Pin::try_from(two), Err(PinError::Patterns(2)));
        let mut bad = Filter::new(vec![pat("a")]);
        bad.licenses = Some(vec!["MIT".into(), "not a licence!".into()]);
        assert!(matches!(Pin::try_from(bad), Err(PinError::License { .. })));
        let mut buf = Vec::new();
        ciborium::into_writer(&Pin::new(pat("acme")), &mut buf).expect("encode");
        let back: Pin = ciborium::from_reader(buf.as_slice()).expect("decode");
        assert_eq!(back.pattern().to_string(), "acme:*");
    }
}
