//! `ferry.toml`: the project's own name and the packages it depends on.
//!
//! ```toml
//! [package]                       # optional: the project itself
//! name = "acme:app"
//! version = "0.1.0"
//!
//! [dependencies]                  # package = version requirement
//! "acme:http-router" = "^1.2"     # highest non-yanked 1.x.y with x >= 2
//! "acme:logger" = "0.3.1"         # exactly 0.3.1 (a bare version is exact)
//!
//! [install]
//! dir = "deps"                    # where `ferry install` writes (the default)
//! ```
//!
//! Unknown keys are refused so that a typo (`[dependecies]`) is an error, not a
//! silently empty project.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use ferry_protocol::PackageName;
use ferry_protocol::name::NameError;
use ferry_protocol::spec::SpecError;
use semver::Version;
use serde::Deserialize;

use super::{Requirement, toml_error};

/// Most dependencies one project may list (a bound on the work `lock` does).
pub const MAX_DEPENDENCIES: usize = 1000;
/// Where `ferry install` writes when `[install] dir` is not set.
pub const DEFAULT_INSTALL_DIR: &str = "deps";

/// A parsed, checked `ferry.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The project itself, when it says.
    pub package: Option<PackageInfo>,
    /// What it depends on, sorted by name.
    pub dependencies: BTreeMap<PackageName, Requirement>,
    /// Where `ferry install` writes, relative to the project folder.
    pub install_dir: PathBuf,
}

/// The `[package]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// `ns:name`.
    pub name: PackageName,
    /// Its version.
    pub version: Version,
    /// One line about it.
    pub description: Option<String>,
}

/// Why `ferry.toml` cannot be used. Each message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not TOML, or not the shape above.
    #[error("{0}")]
    Syntax(String),
    /// A dependency key that is not `ns:name`.
    #[error("dependency `{name}`: {source}")]
    DependencyName {
        /// The key as written.
        name: String,
        /// Why it is not a package name.
        source: NameError,
    },
    /// A dependency whose value is not a version requirement.
    #[error("dependency {name} = \"{requirement}\": {source}")]
    Requirement {
        /// The package.
        name: PackageName,
        /// The value as written.
        requirement: String,
        /// Why it does not parse.
        source: SpecError,
    },
    /// `[package] name` is not `ns:name`.
    #[error("[package] name: {0}")]
    PackageName(NameError),
    /// `[package] version` is not semver.
    #[error("[package] version `{0}` is not a semver version (e.g. 0.1.0)")]
    PackageVersion(String),
    /// `[install] dir` would write outside the project.
    #[error(
        "[install] dir `{0}` must be a relative path inside the project (no `..`, not absolute)"
    )]
    InstallDir(String),
    /// Too many dependencies.
    #[error("{0} dependencies listed, over the limit of {MAX_DEPENDENCIES}")]
    TooMany(usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    package: Option<RawPackage>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    install: RawInstall,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: String,
    version: String,
    description: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInstall {
    dir: Option<String>,
}

/// Parses and checks `ferry.toml` text.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let raw: Raw = toml::from_str(text).map_err(|e| ManifestError::Syntax(toml_error(text, &e)))?;
    if raw.dependencies.len() > MAX_DEPENDENCIES {
        return Err(ManifestError::TooMany(raw.dependencies.len()));
    }
    let package = raw
        .package
        .map(|p| {
            Ok::<_, ManifestError>(PackageInfo {
                name: p.name.parse().map_err(ManifestError::PackageName)?,
                version: Version::parse(&p.version)
                    .map_err(|_| ManifestError::PackageVersion(p.version.clone()))?,
                description: p.description,
            })
        })
        .transpose()?;
    let mut dependencies = BTreeMap::new();
    for (key, value) in raw.dependencies {
        let name: PackageName = key
            .parse()
            .map_err(|source| ManifestError::DependencyName {
                name: key.clone(),
                source,
            })?;
        let req = Requirement::parse(&value).map_err(|source| ManifestError::Requirement {
            name: name.clone(),
            requirement: value.clone(),
            source,
        })?;
        dependencies.insert(name, req);
    }
    let dir = raw
        .install
        .dir
        .unwrap_or_else(|| DEFAULT_INSTALL_DIR.to_string());
    let install_dir = inside_project(&dir).ok_or(ManifestError::InstallDir(dir))?;
    Ok(Manifest {
        package,
        dependencies,
        install_dir,
    })
}

/// `dir` as a path that stays inside the project folder, or None.
fn inside_project(dir: &str) -> Option<PathBuf> {
    let p = Path::new(dir);
    let ok = !dir.trim().is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    ok.then(|| p.to_path_buf())
}

/// The `ferry.toml` that `ferry new` writes.
pub fn template(name: &PackageName, version: &Version) -> String {
    format!(
        "# The Ferry project file.\n\
         # `ferry lock` resolves [dependencies] into ferry.lock; `ferry install` fetches\n\
         # exactly the locked content into [install] dir; `ferry update` moves versions.\n\
         [package]\n\
         name = \"{name}\"\n\
         version = \"{version}\"\n\
         \n\
         [install]\n\
         dir = \"{DEFAULT_INSTALL_DIR}\"\n\
         \n\
         # Last, so that lines appended to this file are dependencies.\n\
         [dependencies]\n\
         # \"acme:http-router\" = \"^1.2\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_project() {
        let m = parse(
            "[package]\nname = \"acme:app\"\nversion = \"0.1.0\"\n\n[dependencies]\n\"acme:http-router\" = \"^1.2\"\n\"acme:log\" = \"0.3.1\"\n",
        )
        .expect("a manifest");
        let p = m.package.expect("a package section");
        assert_eq!(p.name.to_string(), "acme:app");
        assert_eq!(p.version.to_string(), "0.1.0");
        let deps: Vec<(String, String)> = m
            .dependencies
            .iter()
            .map(|(n, r)| (n.to_string(), r.to_string()))
            .collect();
        assert_eq!(
            deps,
            [
                ("acme:http-router".to_string(), "^1.2".to_string()),
                ("acme:log".to_string(), "=0.3.1".to_string())
            ]
        );
        assert_eq!(m.install_dir, PathBuf::from("deps"));
    }

    #[test]
    fn the_template_parses() {
        let name: PackageName = "acme:hello".parse().expect("a name");
        let m = parse(&template(&name, &Version::new(0, 1, 0))).expect("the template parses");
        assert_eq!(m.package.map(|p| p.name), Some(name));
        assert!(m.dependencies.is_empty());
    }

    #[test]
    fn refuses_bad_projects_naming_the_fault() {
        let err = |t: &str| parse(t).expect_err("refused").to_string();
        assert!(
            err("[dependecies]\n").contains("line 1"),
            "{}",
            err("[dependecies]\n")
        );
        assert!(err("[dependencies]\n\"Acme:x\" = \"1\"\n").contains("`Acme:x`"));
        assert!(err("[dependencies]\n\"acme:x\" = \"one\"\n").contains("acme:x = \"one\""));
        assert!(err("[dependencies]\n\"acme:x\" = 1\n").contains("line 2"));
        assert!(err("[install]\ndir = \"../out\"\n").contains("../out"));
        assert!(err("[install]\ndir = \"/tmp/x\"\n").contains("/tmp/x"));
        assert!(err("[package]\nname = \"acme:a\"\nversion = \"1\"\n").contains("`1`"));
        assert!(err("not toml at all = = =").contains("line 1"));
    }
}
