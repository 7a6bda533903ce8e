//! `ferry publish`: check, sign and announce a component or WIT package.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ferry_protocol::PackageName;
use reqwest::Method;

use crate::Global;
use crate::client::{Client, enc};
use crate::output::{emit, human_size};

/// Arguments of `ferry publish`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .wasm file: a component or a binary WIT package.
    file: PathBuf,
    /// Package name, `namespace:name`.
    #[arg(long)]
    package: PackageName,
    /// Semver version, e.g. 1.2.3.
    #[arg(long)]
    version: semver::Version,
    /// One-line description, searchable.
    #[arg(long)]
    description: Option<String>,
    /// SPDX license expression.
    #[arg(long)]
    license: Option<String>,
}

/// Runs `ferry publish`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    // Check locally first so the message names the file; the node checks again.
    if let Err(e) = ferry_protocol::component::check(&bytes) {
        anyhow::bail!("{} cannot be published: {e}", a.file.display());
    }
    let client = Client::new(&g.data_dir)?;
    let mut path = format!(
        "/v1/publish?package={}&version={}",
        enc(&a.package.to_string()),
        enc(&a.version.to_string())
    );
    if let Some(d) = &a.description {
        path.push_str(&format!("&description={}", enc(d)));
    }
    if let Some(l) = &a.license {
        path.push_str(&format!("&license={}", enc(l)));
    }
    let v: serde_json::Value = client
        .send(client.request(Method::POST, &path).body(bytes))
        .await
        .with_context(|| {
            format!(
                "publishing {} as {}@{}",
                a.file.display(),
                a.package,
                a.version
            )
        })?
        .json()
        .await?;
    emit(g.json, &v, |v| {
        format!(
            "published {}@{} ({}, {})\ncid: {}",
            v["package"].as_str().unwrap_or(""),
            v["version"].as_str().unwrap_or(""),
            v["kind"].as_str().unwrap_or(""),
            human_size(v["size"].as_u64().unwrap_or(0)),
            v["cid"].as_str().unwrap_or("")
        )
    })
}
