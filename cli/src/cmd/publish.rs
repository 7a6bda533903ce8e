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
    /// A component (.wasm), a binary WIT package (.wasm), or WIT text (a .wit file or a
    /// directory with an optional deps/ folder), which is encoded as a WIT package.
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
    /// SPDX license expression (default: the component's `licenses` metadata).
    #[arg(long)]
    license: Option<String>,
    /// A README (Markdown or text) to publish with the release.
    #[arg(long, value_name = "FILE")]
    readme: Option<PathBuf>,
    /// The full license text to publish with the release.
    #[arg(long, value_name = "FILE")]
    license_file: Option<PathBuf>,
    /// An archive of the source, for licenses that require offering it.
    #[arg(long, value_name = "FILE")]
    source_archive: Option<PathBuf>,
    /// Source repository URL (default: the component's `source` metadata).
    #[arg(long, value_name = "URL")]
    source_repo: Option<String>,
    /// Source revision (default: the component's `revision` metadata).
    #[arg(long, value_name = "REV")]
    source_rev: Option<String>,
    /// A directory of static files to publish with the release: every regular file
    /// below it, with its relative path and executable bit (links are refused; empty
    /// directories are not kept). `ferry fetch --with-assets` recreates it.
    #[arg(long, value_name = "DIR")]
    assets: Option<PathBuf>,
    /// With WIT text: another WIT package (file or directory) it depends on.
    #[arg(long, value_name = "PATH")]
    wit_dep: Vec<PathBuf>,
}

/// Reads the file to publish, encoding WIT text into a binary WIT package.
fn read_package(a: &Args) -> Result<Vec<u8>> {
    let is_wit_text = a.file.is_dir() || a.file.extension().is_some_and(|e| e == "wit");
    if !is_wit_text {
        return std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()));
    }
    let mut resolve = wit_parser::Resolve::new();
    for dep in &a.wit_dep {
        resolve
            .push_path(dep)
            .with_context(|| format!("parsing WIT dependency {}", dep.display()))?;
    }
    let (pkg, _) = resolve
        .push_path(&a.file)
        .with_context(|| format!("parsing WIT {}", a.file.display()))?;
    wit_component::encode(&resolve, pkg, false)
        .with_context(|| format!("encoding {} as a WIT package", a.file.display()))
}

/// Uploads an attachment to the node and returns its CID.
async fn upload(client: &Client, what: &str, path: &std::path::Path) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))?;
    anyhow::ensure!(!bytes.is_empty(), "the {what} {} is empty", path.display());
    let v: serde_json::Value = client
        .send(client.request(Method::POST, "/v1/blobs").body(bytes))
        .await
        .with_context(|| format!("uploading the {what} {}", path.display()))?
        .json()
        .await?;
    Ok(v["cid"].as_str().unwrap_or("").to_string())
}

/// Runs `ferry publish`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let bytes = read_package(&a)?;
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
    // The whole directory is checked before anything is uploaded.
    let assets = match &a.assets {
        Some(dir) => {
            let (cid, files, bytes) = crate::assets::publish(&client, dir)
                .await
                .with_context(|| format!("publishing the assets in {}", dir.display()))?;
            path.push_str(&format!("&assets={}", enc(&cid)));
            Some(serde_json::json!({ "tree": cid, "files": files, "bytes": bytes }))
        }
        None => None,
    };
    for (key, what, file) in [
        ("readme", "README", &a.readme),
        ("license_file", "license text", &a.license_file),
        ("source_archive", "source archive", &a.source_archive),
    ] {
        if let Some(f) = file {
            let cid = upload(&client, what, f).await?;
            path.push_str(&format!("&{key}={}", enc(&cid)));
        }
    }
    for (key, v) in [
        ("source_repo", &a.source_repo),
        ("source_rev", &a.source_rev),
    ] {
        if let Some(v) = v {
            path.push_str(&format!("&{key}={}", enc(v)));
        }
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
    let mut v = v;
    if let Some(x) = assets {
        v["assets"] = x;
    }
    emit(g.json, &v, |v| {
        let mut text = format!(
            "published {}@{} ({}, {})\ncid: {}",
            v["package"].as_str().unwrap_or(""),
            v["version"].as_str().unwrap_or(""),
            v["kind"].as_str().unwrap_or(""),
            human_size(v["size"].as_u64().unwrap_or(0)),
            v["cid"].as_str().unwrap_or("")
        );
        if let Some(x) = v.get("assets") {
            text.push_str(&format!(
                "\nassets: {} files, {} (tree {})",
                x["files"],
                human_size(x["bytes"].as_u64().unwrap_or(0)),
                x["tree"].as_str().unwrap_or("")
            ));
        }
        text
    })
}
