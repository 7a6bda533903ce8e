//! Target checks: does a component fit a world?
//!
//! A component fits a world when every import it has is provided by the world (a host
//! of that world can satisfy it) and it exports everything the world requires. Names
//! are compared as `wasm-tools component wit` prints them; interface versions match
//! when they are semver-compatible (same major, or same minor below 1.0) and the
//! provider's version is at least the consumer's: a component built against
//! `wasi:cli/stdout@0.2.0` runs on a host that provides `@0.2.6`, not the reverse.

use semver::Version;
use serde::{Deserialize, Serialize};

/// The imports and exports of a world or a component, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Imported items: `ns:pkg/iface@ver`, or a bare function or inline interface name.
    pub imports: Vec<String>,
    /// Exported items, named the same way.
    pub exports: Vec<String>,
}

/// The answer of a target check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    /// Whether the component fits.
    pub fits: bool,
    /// Imports of the component the world does not provide.
    pub missing_imports: Vec<String>,
    /// Exports the world requires that the component lacks.
    pub missing_exports: Vec<String>,
}

/// Splits `ns:pkg/iface@1.2.3` into `("ns:pkg/iface", Some(1.2.3))`; bare names have no
/// version.
pub fn split_versioned(name: &str) -> (&str, Option<Version>) {
    match name.rsplit_once('@') {
        Some((base, v)) if base.contains('/') => match Version::parse(v) {
            Ok(v) => (base, Some(v)),
            Err(_) => (name, None),
        },
        _ => (name, None),
    }
}

/// Whether `provided` can stand in for `wanted` (same semver-compatible line, and not
/// older).
pub fn compatible(wanted: &Version, provided: &Version) -> bool {
    if !wanted.pre.is_empty() || !provided.pre.is_empty() {
        return wanted == provided;
    }
    let same_line = if wanted.major == 0 {
        provided.major == 0 && provided.minor == wanted.minor
    } else {
        provided.major == wanted.major
    };
    same_line && provided >= wanted
}

fn satisfied_by(wanted: &str, offered: &[String], offered_is_provider: bool) -> bool {
    let (base, wv) = split_versioned(wanted);
    offered.iter().any(|o| {
        let (obase, ov) = split_versioned(o);
        if obase != base {
            return false;
        }
        match (&wv, &ov) {
            (None, None) => true,
            (Some(w), Some(p)) if offered_is_provider => compatible(w, p),
            // A required export is met by a component export on the same line, older
            // or newer in the patch: the host only calls what the required version has.
            (Some(w), Some(p)) => compatible(w, p) || compatible(p, w),
            _ => false,
        }
    })
}

/// Checks `component` against `world`.
pub fn check_target(component: &Shape, world: &Shape) -> TargetReport {
    let mut missing_imports: Vec<String> = component
        .imports
        .iter()
        .filter(|i| !satisfied_by(i, &world.imports, true))
        .cloned()
        .collect();
    let mut missing_exports: Vec<String> = world
        .exports
        .iter()
        .filter(|e| !satisfied_by(e, &component.exports, false))
        .cloned()
        .collect();
    missing_imports.sort();
    missing_exports.sort();
    TargetReport {
        fits: missing_imports.is_empty() && missing_exports.is_empty(),
        missing_imports,
        missing_exports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(imports: &[&str], exports: &[&str]) -> Shape {
        Shape {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn versions() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(compatible(&v("0.2.0"), &v("0.2.6")));
        assert!(
            !compatible(&v("0.2.6"), &v("0.2.0")),
            "an older host cannot serve a newer import"
        );
        assert!(!compatible(&v("0.2.0"), &v("0.3.0")));
        assert!(compatible(&v("1.2.0"), &v("1.9.0")));
        assert!(!compatible(&v("1.2.0"), &v("2.0.0")));
        assert!(!compatible(&v("0.2.0-rc-2023-10-18"), &v("0.2.0")));
        assert_eq!(
            split_versioned("wasi:http/types@0.2.3").0,
            "wasi:http/types"
        );
        assert_eq!(split_versioned("hello"), ("hello", None));
        assert_eq!(split_versioned("local:local/x"), ("local:local/x", None));
    }

    #[test]
    fn proxy_fits_and_misfits() {
        let proxy = shape(
            &[
                "wasi:http/types@0.2.3",
                "wasi:io/streams@0.2.3",
                "wasi:clocks/monotonic-clock@0.2.3",
            ],
            &["wasi:http/incoming-handler@0.2.3"],
        );
        let good = shape(
            &["wasi:http/types@0.2.0", "wasi:io/streams@0.2.0"],
            &["wasi:http/incoming-handler@0.2.0"],
        );
        assert!(check_target(&good, &proxy).fits);
        let bad = shape(
            &["wasi:filesystem/types@0.2.0", "wasi:http/types@0.2.0"],
            &["wasi:cli/run@0.2.0"],
        );
        let r = check_target(&bad, &proxy);
        assert!(!r.fits);
        assert_eq!(r.missing_imports, ["wasi:filesystem/types@0.2.0"]);
        assert_eq!(r.missing_exports, ["wasi:http/incoming-handler@0.2.3"]);
        let newer = shape(
            &["wasi:http/types@0.2.6"],
            &["wasi:http/incoming-handler@0.2.6"],
        );
        assert_eq!(
            check_target(&newer, &proxy).missing_imports,
            ["wasi:http/types@0.2.6"]
        );
    }
}
