//! `ferry lock`: resolve the dependencies of ferry.toml into ferry.lock.
//!
//! Each dependency resolves to the highest version matching its requirement that
//! is neither yanked nor deleted (an exact `=1.2.3` or bare `1.2.3` resolves even
//! when yanked, with a warning). A version already locked is kept while it still
//! satisfies its requirement, so `ferry lock` is reproducible: only a new or
//! changed requirement, or `ferry update`, moves a version. Kept entries are
//! checked against the network: their content must still be what the lock says,
//! and not deleted by the operator.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use ferry_protocol::PackageName;
use serde_json::json;

use crate::client::{Client, api_status};
use crate::output::emit;
use crate::project::lockfile::{LockFile, Locked};
use crate::project::plan::{self, ChangeKind, Step, Update};
use crate::project::{read_small, wkg, write_atomic};
use crate::project_dir::{ProjectArg, ProjectDir};
use crate::registry;
use crate::{Global, UsageError};

/// The rules, shown by `--help`.
const HELP: &str = "ferry.toml lists dependencies as `\"ns:name\" = \"REQ\"` (semver: ^1.2, ~1.2, >=1, <2, *; a bare 1.2.3 is exact).\nEach resolves to the highest matching version that is neither yanked nor deleted; an exact one resolves even when yanked, with a warning.\nA version already in ferry.lock is kept while it still matches (yanked or not), so `ferry lock` is reproducible; only `ferry update` moves it.\nKept entries are checked with the network: same content, not deleted.\nferry.lock keeps, per package: name, requirement, version, digest (sha256:<hex>, as wkg.lock) and cid; entries are sorted.";

/// Arguments of `ferry lock`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = HELP)]
pub struct Args {
    #[command(flatten)]
    project: ProjectArg,
    /// Also write wkg.lock (wkg's lock format) beside ferry.lock, from both its sections.
    #[arg(long)]
    wkg: bool,
    /// Take the WIT package locks of a wkg.lock into ferry.lock's [[wit]] section (they
    /// are checked against the network when `ferry wit fetch` uses them).
    #[arg(long, value_name = "WKG_LOCK")]
    from_wkg: Option<PathBuf>,
}

/// Runs `ferry lock`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let dir = ProjectDir::new(&a.project);
    let imported = match &a.from_wkg {
        Some(path) => {
            let text = read_small(path).with_context(|| format!("reading {}", path.display()))?;
            Some(wkg::from_wkg(&text).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    relock(g, &dir, Update::Nothing, a.wkg, imported).await
}

/// Checks a kept lock entry against the network: same content, not deleted (the
/// error then ends with `hint`, what the user can do). Warns when it was yanked.
pub async fn check_locked(
    client: &Client,
    e: &Locked,
    what: &str,
    hint: &str,
) -> Result<registry::Resolved> {
    let label = e.label();
    let r = match registry::resolve(client, &e.exact_spec()).await {
        Ok(r) => r,
        Err(err) if api_status(&err) == Some(410) => {
            return Err(anyhow!("{err} ({label} is locked in {what}: {hint})"));
        }
        Err(err) => return Err(err.context(format!("checking {label} from {what}"))),
    };
    if r.cid != e.cid {
        bail!(
            "the network's {label} is {}, but {what} says {}: the lock was edited or the package log forked (see `ferry info {}`)",
            r.cid,
            e.cid,
            e.name
        );
    }
    if let Some(why) = r.yank_reason() {
        eprintln!("warning: {label} is yanked ({why}); using it because {what} locks it");
    }
    Ok(r)
}

/// Shared by `ferry lock` and `ferry update`: plan, resolve, write, report.
pub async fn relock(
    g: &Global,
    dir: &ProjectDir,
    update: Update,
    write_wkg: bool,
    imported_wit: Option<Vec<Locked>>,
) -> Result<()> {
    let manifest = dir.manifest()?;
    let old = dir.lock()?.unwrap_or_default();
    if let Update::Only(names) = &update
        && let Some(n) = names
            .iter()
            .find(|n| !manifest.dependencies.contains_key(*n))
    {
        return Err(UsageError(format!(
            "{n} is not a dependency in {}: add it under [dependencies] first",
            dir.manifest_path().display()
        ))
        .into());
    }
    let steps = plan::steps(&manifest.dependencies, &old.packages, &update);
    let client = Client::new(&g.data_dir)?;
    let mut packages = Vec::with_capacity(steps.len());
    for step in steps {
        match step {
            Step::Keep(e) => {
                check_locked(&client, &e, "ferry.lock", &update_hint(&e.name)).await?;
                packages.push(e);
            }
            Step::Resolve {
                name,
                requirement,
                previous: _,
            } => {
                let r = registry::resolve(&client, &requirement.spec(&name))
                    .await
                    .with_context(|| format!("resolving {name} {requirement} from ferry.toml"))?;
                if r.package != name.to_string() {
                    bail!("the node answered {} when asked for {name}", r.package);
                }
                if let Some(why) = r.yank_reason() {
                    eprintln!(
                        "warning: {name}@{} is yanked ({why}); locked because ferry.toml asks for exactly that version",
                        r.version
                    );
                }
                packages.push(Locked {
                    name,
                    requirement,
                    version: r.version,
                    cid: r.cid,
                });
            }
        }
    }
    let mut wit = old.wit.clone();
    if let Some(imported) = imported_wit {
        for e in imported {
            wit.retain(|w| !(w.name == e.name && w.requirement == e.requirement));
            wit.push(e);
        }
    }
    let lock = LockFile {
        packages,
        wit: wit.clone(),
    };
    let changes = plan::changes(&old.packages, &lock.packages);
    let written = dir.save_lock(&lock)?;
    let wkg_path = dir.join("wkg.lock");
    if write_wkg {
        write_atomic(&wkg_path, wkg::to_wkg(&lock).as_bytes())
            .with_context(|| format!("writing {}", wkg_path.display()))?;
    }
    let v = json!({
        "lock": dir.lock_path().display().to_string(),
        "written": written,
        "changes": changes,
        "wit": lock.wit.len(),
        "wkg_lock": write_wkg.then(|| wkg_path.display().to_string()),
    });
    emit(g.json, &v, |_| {
        let mut lines: Vec<String> = changes
            .iter()
            .map(|c| {
                let req = c.requirement.as_deref().unwrap_or("");
                let from = c.from.as_deref().unwrap_or("");
                let to = c.to.as_deref().unwrap_or("");
                match c.change {
                    ChangeKind::Added => format!("  added     {} {req} -> {to}", c.package),
                    ChangeKind::Updated => format!("  updated   {} {from} -> {to}", c.package),
                    ChangeKind::Removed => format!("  removed   {} {from}", c.package),
                    ChangeKind::Unchanged => format!("  unchanged {} {to}", c.package),
                }
            })
            .collect();
        let head = if written {
            format!("wrote {}", dir.lock_path().display())
        } else {
            format!("{} is up to date", dir.lock_path().display())
        };
        lines.insert(0, head);
        if write_wkg {
            lines.push(format!("wrote {}", wkg_path.display()));
        }
        lines.join("\n")
    })
}

/// What to do about a deleted dependency.
pub fn update_hint(name: &PackageName) -> String {
    format!("`ferry update {name}` picks another version, or remove it from ferry.toml")
}

/// The packages `ferry update` names, as an [`Update`].
pub fn update_set(names: &[PackageName]) -> Update {
    if names.is_empty() {
        Update::All
    } else {
        Update::Only(names.iter().cloned().collect())
    }
}
