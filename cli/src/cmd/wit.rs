//! `ferry wit fetch`: fill `wit/deps` with the WIT packages the project's `wit/`
//! folder uses, from the registry, and lock them.
//!
//! The folder is parsed with wit-parser; every foreign package it references
//! (`use wasi:io/streams@0.2.0.{…}`, `include wasi:cli/imports@0.2.0`) is resolved
//! to exactly that version (as wkg reads WIT references), downloaded through the
//! node, checked to be that WIT package, printed as WIT text, and followed into its
//! own dependencies. Each lands in `wit/deps/<ns>-<name>-<version>/package.wit`,
//! the layout wit-parser's `Resolve::push_dir` reads (so do wit-bindgen,
//! cargo-component and jco). The versions and digests go to ferry.lock's `[[wit]]`
//! section; the next run uses the locked content and checks it is still what the
//! network serves. Packages in `wit/deps` that ferry did not write are left alone
//! and count as present. Before anything is written, the whole folder is parsed and
//! resolved in a scratch copy: if it would not resolve, nothing changes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use serde_json::json;
use wit_parser::{PackageName as WitName, UnresolvedPackageGroup};

use crate::Global;
use crate::client::Client;
use crate::output::emit;
use crate::project::lockfile::{LockFile, Locked};
use crate::project::witdeps::{self, PACKAGE_FILE, dir_name, registry_ref};
use crate::project::{Requirement, write_atomic};
use crate::project_dir::{ProjectArg, ProjectDir};
use crate::registry;

/// Most WIT packages one fetch follows (a bound on a hostile dependency graph).
pub const MAX_WIT_PACKAGES: usize = 512;
/// Largest binary WIT package downloaded into memory.
pub const MAX_WIT_PACKAGE_BYTES: u64 = 16 << 20;

/// `ferry wit ...`.
#[derive(Subcommand, Debug)]
pub enum WitCommand {
    /// Resolve the packages wit/ uses from the registry and write them to wit/deps
    /// (`<ns>-<name>-<version>/package.wit`), locking them in ferry.lock.
    Fetch(FetchArgs),
}

/// The rules, shown by `--help`.
const FETCH_HELP: &str = "Parses wit/ with wit-parser; every foreign package it uses (`use wasi:io/streams@0.2.0.{..}`) is resolved to exactly that version,\ndownloaded and verified through the node, checked to be that WIT package, printed as WIT, and followed into its own dependencies.\nEach is written to wit/deps/<ns>-<name>-<version>/package.wit (the layout wit-parser, wit-bindgen, cargo-component and jco read)\nand locked in ferry.lock's [[wit]] section; later runs use the locked content. Packages in wit/deps that ferry did not write are\nleft alone and count as present. The result is resolved in a scratch copy first: if it would not resolve, nothing changes.";

/// Arguments of `ferry wit fetch`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = FETCH_HELP)]
pub struct FetchArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// The WIT folder, relative to the project.
    #[arg(long, value_name = "DIR", default_value = "wit")]
    wit: PathBuf,
}

/// Runs `ferry wit ...`.
pub async fn run(g: &Global, c: WitCommand) -> Result<()> {
    match c {
        WitCommand::Fetch(a) => fetch(g, a).await,
    }
}

/// A wit-parser error on one line: its message and, when it has one, the
/// `file:line:column` its rendered snippet points at.
fn one_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = lines.first().copied().unwrap_or("");
    match lines.iter().find_map(|l| l.strip_prefix("--> ")) {
        Some(at) => format!("{message} (at {at})"),
        None => lines.join(" "),
    }
}

fn wit_name(e: &Locked) -> WitName {
    WitName {
        namespace: e.name.namespace().to_string(),
        name: e.name.name().to_string(),
        version: Some(e.version.clone()),
    }
}

/// Packages in `wit/deps` that ferry did not write: their entries, the packages
/// they define, and the foreign packages they use.
struct Local {
    entries: Vec<PathBuf>,
    defined: BTreeSet<WitName>,
    uses: BTreeSet<WitName>,
}

fn parse_wit_file(path: &Path) -> Result<UnresolvedPackageGroup> {
    let text = crate::project::read_small(path)?;
    UnresolvedPackageGroup::parse(path, &text).map_err(|(map, e)| anyhow!("{}", e.render(&map)))
}

fn local_packages(deps: &Path, managed: &BTreeSet<String>) -> Result<Local> {
    let mut local = Local {
        entries: Vec::new(),
        defined: BTreeSet::new(),
        uses: BTreeSet::new(),
    };
    let mut entries: Vec<_> = match std::fs::read_dir(deps) {
        Ok(rd) => rd.flatten().collect(),
        Err(_) => return Ok(local),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        if managed.contains(&file) {
            continue;
        }
        let what = || {
            format!(
                "parsing {} (a package in wit/deps that ferry did not write)",
                path.display()
            )
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_dir() || ext == "wit" {
            let group = if path.is_dir() {
                UnresolvedPackageGroup::parse_dir(&path)
            } else {
                parse_wit_file(&path)
            }
            .map_err(|e| anyhow!("{}", one_line(&e)))
            .with_context(what)?;
            local.defined.extend(witdeps::defined(&group));
            local.uses.extend(witdeps::foreign(&group));
        } else if ext == "wasm" {
            let bytes = std::fs::read(&path).with_context(what)?;
            ferry_protocol::component::check(&bytes).with_context(what)?;
            // A binary WIT package carries the parts of its dependencies it uses, and
            // wit-parser adds them all: every package in it is present.
            let decoded = std::panic::catch_unwind(|| wit_component::decode(&bytes))
                .map_err(|_| anyhow!("the WIT decoder panicked"))
                .with_context(what)?
                .with_context(what)?;
            local.defined.extend(
                decoded
                    .resolve()
                    .packages
                    .iter()
                    .map(|(_, p)| p.name.clone()),
            );
        } else {
            continue;
        }
        local.entries.push(path);
    }
    Ok(local)
}

/// Copies a file, or the `.wit` files of a folder, into `to`.
fn copy_entry(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)?.flatten() {
            let p = e.path();
            if p.is_file() && p.extension().is_some_and(|x| x == "wit") {
                std::fs::copy(&p, to.join(e.file_name()))?;
            }
        }
    } else {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// Lays out wit/ as it will be after the fetch in a scratch folder and resolves it
/// with wit-parser; returns the main package's name.
fn check_staged(
    wit_dir: &Path,
    local: &Local,
    fetched: &BTreeMap<WitName, (Locked, String)>,
) -> Result<String> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let root = scratch.path();
    for e in std::fs::read_dir(wit_dir)?.flatten() {
        let p = e.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "wit") {
            std::fs::copy(&p, root.join(e.file_name()))?;
        }
    }
    let deps = root.join("deps");
    std::fs::create_dir_all(&deps)?;
    for entry in &local.entries {
        if let Some(name) = entry.file_name() {
            copy_entry(entry, &deps.join(name))?;
        }
    }
    for (name, (_, text)) in fetched {
        let d = deps.join(dir_name(name));
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(PACKAGE_FILE), text)?;
    }
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(root).map_err(|e| {
        let msg =
            format!("{e:#}").replace(&root.display().to_string(), &wit_dir.display().to_string());
        anyhow!(
            "{} would not resolve with these packages: {msg}",
            wit_dir.display()
        )
    })?;
    Ok(resolve.packages[pkg].name.to_string())
}

/// Removes a folder ferry wrote earlier: its package.wit, then the folder if empty.
fn remove_managed(dir: &Path) -> bool {
    let _ = std::fs::remove_file(dir.join(PACKAGE_FILE));
    std::fs::remove_dir(dir).is_ok()
}

async fn fetch(g: &Global, a: FetchArgs) -> Result<()> {
    let dir = ProjectDir::new(&a.project);
    let wit_dir = dir.join(&a.wit);
    if !wit_dir.is_dir() {
        bail!(
            "{} is not a folder: the project's WIT goes there (see `ferry new`)",
            wit_dir.display()
        );
    }
    let group = UnresolvedPackageGroup::parse_dir(&wit_dir)
        .map_err(|e| anyhow!("{}", one_line(&e)))
        .with_context(|| format!("parsing the WIT in {}", wit_dir.display()))?;
    let main = group.main.name.to_string();
    let old = dir.lock()?.unwrap_or_default();
    let deps_dir = wit_dir.join("deps");
    let managed_old: BTreeSet<String> = old.wit.iter().map(|e| dir_name(&wit_name(e))).collect();
    let local = local_packages(&deps_dir, &managed_old)?;

    let mut queue: VecDeque<(WitName, String)> = witdeps::foreign(&group)
        .into_iter()
        .map(|n| (n, main.clone()))
        .chain(
            local
                .uses
                .iter()
                .map(|n| (n.clone(), "a package in wit/deps".to_string())),
        )
        .collect();
    let client = Client::new(&g.data_dir)?;
    let mut fetched: BTreeMap<WitName, (Locked, String)> = BTreeMap::new();
    let mut from_lock = BTreeSet::new();
    while let Some((name, by)) = queue.pop_front() {
        if fetched.contains_key(&name) || local.defined.contains(&name) || group.main.name == name {
            continue;
        }
        if fetched.len() >= MAX_WIT_PACKAGES {
            bail!("{main} pulls in more than {MAX_WIT_PACKAGES} WIT packages; refusing to go on");
        }
        let (pkg, version) =
            registry_ref(&name).with_context(|| format!("{name} is used by {by}"))?;
        let locked = old
            .wit
            .iter()
            .find(|e| e.name == pkg && e.version == version)
            .cloned();
        let entry = match locked {
            Some(e) => {
                super::lock::check_locked(
                    &client,
                    &e,
                    "ferry.lock",
                    "put another package in wit/deps by hand, or ask the publisher",
                )
                .await?;
                from_lock.insert(name.clone());
                e
            }
            None => {
                let r = registry::resolve(&client, &format!("{pkg}@{version}"))
                    .await
                    .with_context(|| format!("resolving {name} (used by {by})"))?;
                if let Some(why) = r.yank_reason() {
                    eprintln!(
                        "warning: {name} is yanked ({why}); using it because {by} uses exactly that version"
                    );
                }
                Locked {
                    name: pkg,
                    requirement: Requirement::exact(&version),
                    version: r.version,
                    cid: r.cid,
                }
            }
        };
        let bytes = registry::to_bytes(&client, &entry.cid, MAX_WIT_PACKAGE_BYTES)
            .await
            .with_context(|| format!("downloading {name} (used by {by})"))?;
        let rendered = witdeps::render(&bytes, &name)
            .with_context(|| format!("{} ({}) from the registry", entry.label(), entry.cid))?;
        for d in rendered.deps {
            queue.push_back((d, name.to_string()));
        }
        fetched.insert(name, (entry, rendered.text));
    }

    let resolved = check_staged(&wit_dir, &local, &fetched)?;

    let mut written = 0usize;
    let mut packages = Vec::new();
    for (name, (entry, text)) in &fetched {
        let folder = deps_dir.join(dir_name(name));
        let file = folder.join(PACKAGE_FILE);
        let same = std::fs::read_to_string(&file).is_ok_and(|t| t == *text);
        if !same {
            write_atomic(&file, text.as_bytes())
                .with_context(|| format!("writing {}", file.display()))?;
            written += 1;
        }
        packages.push(json!({
            "package": name.to_string(),
            "version": entry.version.to_string(),
            "cid": entry.cid.to_string(),
            "digest": entry.digest(),
            "dir": folder.display().to_string(),
            "from": if from_lock.contains(name) { "lock" } else { "registry" },
            "written": !same,
        }));
    }
    let new_dirs: BTreeSet<String> = fetched.keys().map(dir_name).collect();
    let removed: Vec<String> = managed_old
        .difference(&new_dirs)
        .map(|d| deps_dir.join(d))
        .filter(|d| remove_managed(d))
        .map(|d| d.display().to_string())
        .collect();
    let lock = LockFile {
        packages: old.packages.clone(),
        wit: fetched.values().map(|(e, _)| e.clone()).collect(),
    };
    let lock_written = dir.save_lock(&lock)?;
    let v = json!({
        "wit": wit_dir.display().to_string(),
        "package": resolved,
        "packages": packages,
        "local": local.defined.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "written": written,
        "removed": removed,
        "lock": dir.lock_path().display().to_string(),
        "lock_written": lock_written,
    });
    emit(g.json, &v, |_| {
        let mut lines = vec![format!(
            "{} WIT package(s) for {resolved} in {} ({written} written, {} unchanged); {} resolves",
            fetched.len(),
            deps_dir.display(),
            fetched.len() - written,
            wit_dir.display()
        )];
        lines.extend(
            fetched
                .iter()
                .map(|(n, (e, _))| format!("  {n}  {}", e.cid)),
        );
        lines.extend(removed.iter().map(|r| format!("  removed {r}")));
        lines.join("\n")
    })
}
