//! `ferry update [PACKAGE...]`: resolve dependencies again, moving their locked
//! versions to the highest that match ferry.toml (yanked and deleted versions are
//! skipped). Without a package, every dependency moves; with names, only those.

use anyhow::Result;
use ferry_protocol::PackageName;

use crate::Global;
use crate::project_dir::{ProjectArg, ProjectDir};

/// Arguments of `ferry update`.
#[derive(clap::Args, Debug)]
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
