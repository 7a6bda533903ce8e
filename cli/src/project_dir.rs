//! The project folder on disk: reading `ferry.toml` and `ferry.lock` with messages
//! that name the file, and writing the lock only when its text changed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use crate::project::lockfile::LockFile;
use crate::project::manifest::{self, Manifest};
use crate::project::{LOCK_FILE, MANIFEST_FILE, read_small, write_atomic};

/// `--project DIR`, shared by the project commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ProjectArg {
    /// The project folder, holding ferry.toml and ferry.lock.
    #[arg(long = "project", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

/// A project folder.
pub struct ProjectDir {
    /// Its root.
    pub root: PathBuf,
}

impl ProjectDir {
    /// The project at `arg`.
    pub fn new(arg: &ProjectArg) -> Self {
        Self {
            root: arg.dir.clone(),
        }
    }

    /// `<root>/<rel>`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// Path of ferry.toml.
    pub fn manifest_path(&self) -> PathBuf {
        self.join(MANIFEST_FILE)
    }

    /// Path of ferry.lock.
    pub fn lock_path(&self) -> PathBuf {
        self.join(LOCK_FILE)
    }

    /// The parsed ferry.toml; a missing one is an error that says how to make one.
    pub fn manifest(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        if !path.exists() {
            return Err(anyhow!(
                "no {MANIFEST_FILE} in {}: create a project with `ferry new NAME --template rust|js|wit`, or write one with a [dependencies] table",
                self.root.display()
            ));
        }
        let text = read_small(&path).with_context(|| format!("reading {}", path.display()))?;
        manifest::parse(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// The parsed ferry.lock, or None when there is none yet.
    pub fn lock(&self) -> Result<Option<LockFile>> {
        let path = self.lock_path();
        if !path.exists() {
            return Ok(None);
        }
        let text = read_small(&path).with_context(|| format!("reading {}", path.display()))?;
        LockFile::parse(&text)
            .map(Some)
            .with_context(|| format!("reading {}", path.display()))
    }

    /// Writes ferry.lock if its text differs from what is on disk; returns whether
    /// it wrote (an unchanged lock keeps its timestamp, so build tools stay quiet).
    pub fn save_lock(&self, lock: &LockFile) -> Result<bool> {
        let path = self.lock_path();
        let text = lock.to_toml();
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(true)
    }
}
