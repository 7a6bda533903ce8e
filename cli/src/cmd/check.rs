//! `ferry check`: does a component fit a world published to the registry? Its imports
//! must all be provided by the world, and it must export what the world requires. This
//! is how a developer targets a profile, and how a host decides whether it can run a
//! component.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ferry_protocol::component::analysis::world_shape;
use ferry_protocol::target::{Shape, check_target, split_versioned};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Global;
use crate::client::Client;
use crate::output::emit;

/// Arguments of `ferry check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A component file, or `ns:name@VERSION` from the registry.
    component: String,
    /// The world, `ns:pkg/world[@VERSION-REQ]`, from a WIT package in the registry.
    #[arg(long, value_name = "NS:PKG/WORLD@VER")]
    world: String,
}

/// Asks the node to hold `spec` (verified) and returns its view and bytes.
async fn fetch(client: &Client, spec: &str) -> Result<(Value, Vec<u8>)> {
    let view: Value = client
        .send(
            client
                .request(Method::POST, "/v1/fetch")
                .json(&json!({ "spec": spec })),
        )
        .await
        .with_context(|| format!("fetching {spec}"))?
        .json()
        .await?;
    let cid = view["cid"].as_str().unwrap_or("").to_string();
    let bytes = client
        .send(client.request(Method::GET, &format!("/v1/blobs/{cid}")))
        .await?
        .bytes()
        .await?
        .to_vec();
    if ferry_protocol::ContentId::of(&bytes).to_string() != cid {
        bail!("the node returned other bytes than {cid} for {spec}: refusing them");
    }
    Ok((view, bytes))
}

/// Runs `ferry check`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let (base, version) = split_versioned(&a.world);
    let (package, world) = base.split_once('/').ok_or_else(|| {
        crate::UsageError(format!(
            "`{}` is not a world: expected ns:pkg/world[@version], e.g. wasi:http/proxy@0.2.0",
            a.world
        ))
    })?;
    // `split_versioned` only takes full versions; a requirement (`@0.2`) stays in `base`.
    let (package, world, want) = match (version, world.split_once('@')) {
        (Some(v), _) => (package.to_string(), world.to_string(), v.to_string()),
        (None, Some((w, req))) => (package.to_string(), w.to_string(), req.to_string()),
        (None, None) => (package.to_string(), world.to_string(), String::new()),
    };
    let client = Client::new(&g.data_dir)?;
    let path = PathBuf::from(&a.component);
    let (label, shape) = if path.exists() {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let checked = ferry_protocol::component::check(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        (
            path.display().to_string(),
            Shape {
                imports: checked.summary.imports,
                exports: checked.summary.exports,
            },
        )
    } else {
        let (view, _) = fetch(&client, &a.component).await?;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        };
        (
            format!(
                "{}@{}",
                view["package"].as_str().unwrap_or(""),
                view["version"].as_str().unwrap_or("")
            ),
            Shape {
                imports: strings(&view["imports"]),
                exports: strings(&view["exports"]),
            },
        )
    };
    let spec = if want.is_empty() {
        package.clone()
    } else {
        format!("{package}@{want}")
    };
    let (wview, wbytes) = fetch(&client, &spec).await?;
    let world_name = format!(
        "{package}/{world}@{}",
        wview["version"].as_str().unwrap_or("")
    );
    let wshape = world_shape(&wbytes, &world).map_err(|e| anyhow::anyhow!("{world_name}: {e}"))?;
    let report = check_target(&shape, &wshape);
    let fits = report.fits;
    let out = json!({
        "component": label,
        "world": world_name,
        "fits": report.fits,
        "missing_imports": report.missing_imports,
        "missing_exports": report.missing_exports,
    });
    emit(g.json, &out, |o| {
        let mut t = if fits {
            format!("{label} fits {world_name}")
        } else {
            format!("{label} does NOT fit {world_name}")
        };
        for i in o["missing_imports"].as_array().into_iter().flatten() {
            t.push_str(&format!(
                "\n  imports {} which the world does not provide",
                i.as_str().unwrap_or("")
            ));
        }
        for e in o["missing_exports"].as_array().into_iter().flatten() {
            t.push_str(&format!(
                "\n  does not export {} which the world requires",
                e.as_str().unwrap_or("")
            ));
        }
        t
    })?;
    if !fits {
        // Scripts branch on the exit code; the report above says why.
        std::process::exit(1);
    }
    Ok(())
}
