//! WIT dependencies: which foreign packages a `wit/` folder uses, where wit-parser
//! looks for them, and how a registry's binary WIT package becomes the text it reads.
//!
//! Layout: `wit/deps/<ns>-<name>-<version>/package.wit`, one folder per package,
//! which is what wkg and cargo-component write and what `Resolve::push_dir` (used
//! by wit-bindgen, cargo-component and jco alike) reads: every folder under `deps/`
//! is parsed as one package, and packages are matched by `ns:name@version`.
//! A WIT reference like `use wasi:io/streams@0.2.0.{…}` is an exact version, as
//! wkg reads it (`=0.2.0`).

use std::collections::BTreeSet;

use ferry_protocol::PackageName;
use ferry_protocol::component::{ComponentError, PackageKind};
use ferry_protocol::name::NameError;
use semver::Version;
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{PackageName as WitName, UnresolvedPackageGroup};

/// The file each fetched package is written to, inside its folder.
pub const PACKAGE_FILE: &str = "package.wit";

/// The folder under `wit/deps` for a package: its name with `:` and `@` turned
/// into `-` (`wasi:io@0.2.0` → `wasi-io-0.2.0`), which is safe on every file system.
pub fn dir_name(name: &WitName) -> String {
    name.to_string().replace([':', '@'], "-")
}

/// The packages a parsed group defines (its main package and nested ones).
pub fn defined(group: &UnresolvedPackageGroup) -> BTreeSet<WitName> {
    std::iter::once(&group.main)
        .chain(&group.nested)
        .map(|p| p.name.clone())
        .collect()
}

/// The foreign packages a group uses and does not define itself.
pub fn foreign(group: &UnresolvedPackageGroup) -> BTreeSet<WitName> {
    let own = defined(group);
    std::iter::once(&group.main)
        .chain(&group.nested)
        .flat_map(|p| p.foreign_deps.keys().cloned())
        .filter(|n| !own.contains(n))
        .collect()
}

/// Why a WIT reference cannot come from a Ferry registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// `use acme:x/y.{…}` without `@version`: a Ferry package always has one, and
    /// wit-parser would only match it to a package that has none.
    #[error(
        "{0} is used without a version, and registry packages are versioned: write {0}@X.Y.Z in the WIT, or put the package in wit/deps yourself"
    )]
    Unversioned(String),
    /// The WIT name is not a Ferry package name.
    #[error("{name} cannot be a registry package: {source}")]
    Name {
        /// The reference.
        name: String,
        /// Why.
        source: NameError,
    },
}

/// A WIT reference as a Ferry package and exact version.
pub fn registry_ref(name: &WitName) -> Result<(PackageName, Version), RefError> {
    let version = name
        .version
        .clone()
        .ok_or_else(|| RefError::Unversioned(name.to_string()))?;
    let pkg = format!("{}:{}", name.namespace, name.name)
        .parse()
        .map_err(|source| RefError::Name {
            name: name.to_string(),
            source,
        })?;
    Ok((pkg, version))
}

/// A registry package as WIT text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `package.wit` contents: the package alone; it names its dependencies.
    pub text: String,
    /// The packages it uses, which must be fetched too.
    pub deps: BTreeSet<WitName>,
}

/// Why fetched bytes cannot be written as a WIT dependency.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The bytes are not a valid package at all.
    #[error("its content is not a valid WIT package: {0}")]
    Invalid(ComponentError),
    /// A component, not a WIT package.
    #[error("it is a component, not a WIT package: publish the WIT package itself")]
    Component,
    /// A WIT package of another name.
    #[error("its content is the WIT package {found}, not {expected}")]
    Name {
        /// What was asked.
        expected: String,
        /// What the bytes hold.
        found: String,
    },
    /// Decoding or printing failed (or a library panicked on these bytes).
    #[error("its WIT could not be printed: {0}")]
    Print(String),
}

/// Decodes a binary WIT package, checks that it is `expected`, and prints it.
/// Never panics: the bytes are validated first, and the decoder and printer run
/// under `catch_unwind` because they are libraries fed with bytes from the network.
pub fn render(bytes: &[u8], expected: &WitName) -> Result<Rendered, RenderError> {
    let checked = ferry_protocol::component::check(bytes).map_err(RenderError::Invalid)?;
    if checked.kind != PackageKind::Wit {
        return Err(RenderError::Component);
    }
    let run = || -> Result<Rendered, RenderError> {
        let (resolve, id) = match wit_component::decode(bytes) {
            Ok(DecodedWasm::WitPackage(resolve, id)) => (resolve, id),
            Ok(DecodedWasm::Component(..)) => return Err(RenderError::Component),
            Err(e) => return Err(RenderError::Print(format!("{e:#}"))),
        };
        let found = &resolve.packages[id].name;
        if found != expected {
            return Err(RenderError::Name {
                expected: expected.to_string(),
                found: found.to_string(),
            });
        }
        let mut printer = WitPrinter::default();
        printer
            .print(&resolve, id, &[])
            .map_err(|e| RenderError::Print(format!("{e:#}")))?;
        let deps = resolve
            .packages
            .iter()
            .filter(|(other, _)| *other != id)
            .map(|(_, p)| p.name.clone())
            .collect();
        Ok(Rendered {
            text: printer.output.to_string(),
            deps,
        })
    };
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        Err(RenderError::Print(
            "the WIT decoder or printer panicked on these bytes".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `t:top@1.0.0`, which uses `t:dep@1.0.0`, encoded as a binary WIT package.
    fn encoded_top() -> Vec<u8> {
        let mut resolve = wit_parser::Resolve::default();
        resolve
            .push_str(
                "dep.wit",
                "package t:dep@1.0.0;\ninterface types {\n  type id = u32;\n}\n",
            )
            .expect("dep parses");
        let top = resolve
            .push_str(
                "top.wit",
                "package t:top@1.0.0;\ninterface api {\n  use t:dep/types@1.0.0.{id};\n  get: func() -> id;\n}\nworld w {\n  export api;\n}\n",
            )
            .expect("top parses");
        wit_component::encode(&resolve, top, false).expect("encodes")
    }

    fn wit_name(s: &str) -> WitName {
        let (ns, rest) = s.split_once(':').expect("ns:name");
        let (name, version) = match rest.split_once('@') {
            Some((n, v)) => (n, Some(Version::parse(v).expect("a version"))),
            None => (rest, None),
        };
        WitName {
            namespace: ns.into(),
            name: name.into(),
            version,
        }
    }

    #[test]
    fn renders_a_package_and_names_its_dependencies() {
        let r = render(&encoded_top(), &wit_name("t:top@1.0.0")).expect("renders");
        assert!(r.text.contains("package t:top@1.0.0;"), "{}", r.text);
        assert!(r.text.contains("t:dep/types@1.0.0"), "{}", r.text);
        assert_eq!(r.deps, [wit_name("t:dep@1.0.0")].into_iter().collect());
        // The text parses back, and it uses exactly what `deps` says.
        let group = UnresolvedPackageGroup::parse("package.wit", &r.text).expect("parses");
        assert_eq!(foreign(&group), r.deps);
        assert_eq!(dir_name(&wit_name("t:dep@1.0.0")), "t-dep-1.0.0");
    }

    #[test]
    fn refuses_other_content() {
        let e = render(&encoded_top(), &wit_name("t:other@1.0.0")).expect_err("wrong name");
        assert!(e.to_string().contains("t:top@1.0.0"), "{e}");
        let e = render(b"\0asm garbage", &wit_name("t:top@1.0.0")).expect_err("garbage");
        assert!(matches!(e, RenderError::Invalid(_)), "{e}");
    }

    #[test]
    fn references_need_versions_and_registry_names() {
        assert!(matches!(
            registry_ref(&wit_name("fermyon:spin")),
            Err(RefError::Unversioned(_))
        ));
        let (p, v) = registry_ref(&wit_name("wasi:io@0.2.0")).expect("a registry ref");
        assert_eq!(
            (p.to_string(), v.to_string()),
            ("wasi:io".into(), "0.2.0".into())
        );
        assert!(registry_ref(&wit_name("Wasi:io@0.2.0")).is_err());
    }
}
