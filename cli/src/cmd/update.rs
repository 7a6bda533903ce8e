//! `ferry update [PACKAGE...]`: resolve dependencies again, moving their locked
//! versions to the highest that match ferry.toml (yanked and deleted versions are
//! skipped). Without a package, every dependency moves; with names, only those.

use anyhow::Result;
use ferry_protocol::PackageName;

use crate::Global;
use crate::project_dir::{ProjectArg, ProjectDir};

/// The rules, shown by `--help`.
const HELP: &str = "Like `ferry lock`, but the named dependencies (all without a name) resolve again even when their locked version still matches:\nthey move to the highest matching version that is neither yanked nor deleted. The others keep their locked version.";

/// Arguments of `ferry update`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = HELP)]
pub struct Args {
    /// Dependencies to move (`ns:name`, as listed in ferry.toml). Default: all.
    packages: Vec<PackageName>,
    #[command(flatten)]
    project: ProjectArg,
}

/// Runs `ferry update`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let dir = ProjectDir::new(&a.project);
    super::lock::relock(g, &dir, super::lock::update_set(&a.packages), false, None).await
}
