//! `ferry install`: fetch exactly the content ferry.lock names into the project.
//!
//! Each `[[package]]` entry lands at `<install dir>/<ns>/<name>@<version>.wasm`
//! (the install dir is `deps` unless ferry.toml's `[install] dir` says otherwise),
//! verified against the lock's digest before the file appears. A file already
//! there with the locked digest is left alone, so a second install transfers
//! nothing. Every entry is checked with the network before anything is written: a
//! lock that no longer matches ferry.toml, content the operator deleted, or a
//! version whose content is not the locked one stops the install with the project
//! unchanged. A yanked version still installs (it is locked), with a warning.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use crate::Global;
use crate::client::Client;
use crate::output::{emit, human_size};
use crate::project::lockfile::Locked;
use crate::project_dir::{ProjectArg, ProjectDir};
use crate::registry;

/// The rules, shown by `--help`.
const HELP: &str = "Installs each [[package]] of ferry.lock at <dir>/<ns>/<name>@<version>.wasm (dir: ferry.toml [install] dir, default deps),\nverified against the locked digest before the file appears; other versions of the package there are removed.\nFiles already present with the locked digest are not downloaded again.\nEvery entry is checked with the network first: a lock that does not match ferry.toml, was edited inconsistently,\nor names content the operator deleted fails the install (exit 1) before any file changes. Yanked-but-locked versions install with a warning.";

/// Arguments of `ferry install`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = HELP)]
pub struct Args {
    #[command(flatten)]
    project: ProjectArg,
}

/// What happened to one package.
#[derive(Serialize)]
struct Installed {
    package: String,
    version: String,
    cid: String,
    digest: String,
    path: String,
    /// `fetched` or `present`.
    action: &'static str,
    /// Bytes downloaded for it (0 when present).
    bytes: u64,
    /// The yank reason, when the locked version is yanked.
    yanked: Option<String>,
}

/// `<dir>/<ns>/<name>@<version>.wasm`.
pub fn target(dir: &Path, e: &Locked) -> PathBuf {
    dir.join(e.name.namespace().as_str())
        .join(format!("{}@{}.wasm", e.name.name(), e.version))
}

/// Removes other versions of `e`'s package that an earlier install left beside it.
fn prune(dir: &Path, e: &Locked) -> Vec<PathBuf> {
    let keep = target(dir, e);
    let prefix = format!("{}@", e.name.name());
    let ns_dir = dir.join(e.name.namespace().as_str());
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(&ns_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let old_version = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".wasm"))
            .is_some_and(|v| semver::Version::parse(v).is_ok());
        if old_version && path != keep && path.is_file() && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Runs `ferry install`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let dir = ProjectDir::new(&a.project);
    let manifest = dir.manifest()?;
    let lock = dir.lock()?.ok_or_else(|| {
        anyhow!(
            "no ferry.lock in {}: run `ferry lock` first",
            dir.root.display()
        )
    })?;
    lock.check_against(&manifest.dependencies)
        .with_context(|| format!("checking {}", dir.lock_path().display()))?;
    let client = Client::new(&g.data_dir)?;
    let install_dir = dir.join(&manifest.install_dir);

    // Ask about every entry first, so that one deleted package stops the install
    // before any file of the project changes.
    let mut statuses = Vec::with_capacity(lock.packages.len());
    for e in &lock.packages {
        statuses.push(
            super::lock::check_locked(&client, e, "ferry.lock", &super::lock::update_hint(&e.name))
                .await?,
        );
    }

    let show_bar = !g.json && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| {
        let b = indicatif::ProgressBar::new(lock.packages.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut out = Vec::with_capacity(lock.packages.len());
    let mut removed = Vec::new();
    for (e, status) in lock.packages.iter().zip(&statuses) {
        let path = target(&install_dir, e);
        if let Some(b) = &bar {
            b.set_message(e.label());
        }
        let present = registry::file_digest(&path).is_some_and(|d| d == *e.cid.digest());
        let bytes = if present {
            0
        } else {
            registry::to_file(&client, &e.cid, &path)
                .await
                .with_context(|| format!("installing {} into {}", e.label(), path.display()))?
        };
        removed.extend(prune(&install_dir, e));
        out.push(Installed {
            package: e.name.to_string(),
            version: e.version.to_string(),
            cid: e.cid.to_string(),
            digest: e.digest(),
            path: path.display().to_string(),
            action: if present { "present" } else { "fetched" },
            bytes,
            yanked: status.yank_reason().map(String::from),
        });
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let fetched = out.iter().filter(|i| i.action == "fetched").count();
    let transferred: u64 = out.iter().map(|i| i.bytes).sum();
    let v = serde_json::json!({
        "dir": install_dir.display().to_string(),
        "packages": out,
        "fetched": fetched,
        "present": out.len() - fetched,
        "bytes_transferred": transferred,
        "removed": removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    emit(g.json, &v, |_| {
        let mut lines: Vec<String> = out
            .iter()
            .map(|i| {
                format!(
                    "  {:<8} {}@{} -> {}",
                    i.action, i.package, i.version, i.path
                )
            })
            .collect();
        lines.extend(
            removed
                .iter()
                .map(|p| format!("  removed  {}", p.display())),
        );
        lines.insert(
            0,
            format!(
                "installed {} package(s) into {}: {fetched} fetched ({}), {} already present and verified",
                out.len(),
                install_dir.display(),
                human_size(transferred),
                out.len() - fetched
            ),
        );
        lines.join("\n")
    })
}
