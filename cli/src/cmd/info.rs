//! `ferry info`: what a package is before installing it: versions (yanked marked),
//! imports, exports, capabilities, metadata, signers, attestations, attachments, forks.
//! Also `ferry readme` and `ferry license`, which print attached documents.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ferry_protocol::{Spec, Want};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Global;
use crate::client::{Client, enc};
use crate::output::{emit, human_size};

/// Arguments of `ferry info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `ns:name`, `ns:name@VERSION-REQ`, a CID, or `sha256:<hex>`.
    target: Spec,
    /// Ask only this network: the node's own or one it mirrors (default: its own, then
    /// its mirrors).
    #[arg(long, value_name = "ID")]
    network: Option<ferry_protocol::NetworkId>,
}

/// Arguments of `ferry readme` and `ferry license`.
#[derive(clap::Args, Debug)]
pub struct DocArgs {
    /// `ns:name[@VERSION-REQ]` (default: the newest non-yanked version).
    spec: Spec,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

/// Runs `ferry readme` / `ferry license`: fetch the attachment `name` and print it.
pub async fn doc(g: &Global, a: DocArgs, name: &str) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let spec = spec_text(&a.spec);
    let v: Value = client
        .send(
            client
                .request(Method::POST, "/v1/attachment")
                .json(&json!({ "spec": spec, "name": name })),
        )
        .await
        .with_context(|| format!("getting the {} of {spec}", name.replace('-', " ")))?
        .json()
        .await?;
    let cid = v["cid"].as_str().unwrap_or("");
    let bytes = client
        .send(client.request(Method::GET, &format!("/v1/blobs/{cid}")))
        .await?
        .bytes()
        .await?;
    // The node verified every chunk; check the whole once more before showing it.
    let got = ferry_protocol::ContentId::of(&bytes).to_string();
    anyhow::ensure!(
        got == cid,
        "the node returned bytes {got} for attachment {cid}: refusing them"
    );
    if let Some(out) = &a.output {
        std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    }
    let text = String::from_utf8_lossy(&bytes);
    emit(
        g.json,
        &json!({
            "package": v["package"], "version": v["version"], "name": name, "cid": cid,
            "size": v["size"], "path": a.output.as_ref().map(|p| p.display().to_string()),
            "text": if a.output.is_none() { Some(text.to_string()) } else { None },
        }),
        |_| match &a.output {
            Some(p) => format!("wrote {}", p.display()),
            None => text.trim_end().to_string(),
        },
    )
}

fn spec_text(spec: &Spec) -> String {
    match spec {
        Spec::Package(n, w) => format!("{n}@{w}"),
        Spec::Content(c) => c.to_string(),
    }
}

/// Human lines for one release's contents: imports, exports, capabilities, metadata.
fn contents(r: &Value, out: &mut String) {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    for (label, key) in [
        ("imports", "imports"),
        ("exports", "exports"),
        ("interfaces", "interfaces"),
        ("worlds", "worlds"),
    ] {
        let l = list(&r[key]);
        if !l.is_empty() {
            out.push_str(&format!("\n      {label}: {}", l.join(", ")));
        }
    }
    let caps: Vec<String> = r["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| s(&c["name"]).to_string())
        .collect();
    if !caps.is_empty() {
        out.push_str(&format!("\n      capabilities: {}", caps.join(", ")));
    }
    let m = &r["metadata"];
    for key in ["authors", "homepage", "source", "revision"] {
        if let Some(v) = m[key].as_str() {
            out.push_str(&format!("\n      {key}: {v}"));
        }
    }
    if let Some(p) = m["producers"].as_object() {
        for (field, entries) in p {
            out.push_str(&format!("\n      {field}: {}", list(entries).join(", ")));
        }
    }
    let at = &r["attachments"];
    for (label, key) in [
        ("readme", "readme"),
        ("license text", "license_text"),
        ("source archive", "source_archive"),
    ] {
        if let Some(a) = at.get(key).filter(|a| !a.is_null()) {
            out.push_str(&format!(
                "\n      {label}: {} ({})",
                s(&a["cid"]),
                human_size(a["size"].as_u64().unwrap_or(0))
            ));
        }
    }
    if let Some(x) = at.get("assets").filter(|x| !x.is_null()) {
        out.push_str(&format!(
            "\n      assets: {} files, {} (tree {})",
            x["files"],
            human_size(x["bytes"].as_u64().unwrap_or(0)),
            s(&x["cid"])
        ));
    }
    if let Some(repo) = at["repository"].as_str() {
        out.push_str(&format!(
            "\n      source: {repo}{}",
            at["revision"]
                .as_str()
                .map(|r| format!(" @ {r}"))
                .unwrap_or_default()
        ));
    }
    match s(&r["summary"]) {
        "refused" => out.push_str(&format!(
            "\n      REFUSED: its signed summary does not match its bytes ({})",
            s(&r["summary_problem"])
        )),
        "announced" => {
            out.push_str("\n      (summary as announced; checked against the bytes on fetch)")
        }
        _ => {}
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Runs `ferry info`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let (package, want) = match &a.target {
        Spec::Content(c) => return by_content(g, &client, c, a.network.as_ref()).await,
        Spec::Package(n, w) => (n, w),
    };
    let mut path = format!("/v1/packages/{}", enc(&package.to_string()));
    let mut sep = '?';
    if !matches!(want, Want::Latest) {
        path.push_str(&format!("?version={}", enc(&want.to_string())));
        sep = '&';
    }
    if let Some(n) = &a.network {
        path.push_str(&format!("{sep}network={}", enc(&n.to_string())));
    }
    let v: Value = client.get(&path).await?;
    emit(g.json, &v, |v| {
        let mut out = format!(
            "{} ({})\nlog head: seq {} ({})",
            s(&v["package"]),
            s(&v["kind"]),
            v["head"]["seq"],
            s(&v["head"]["id"])
        );
        if v["mirror"].as_bool() == Some(true) {
            out.push_str(&format!("\nmirrored from network {}", s(&v["network"])));
        }
        if let Some(d) = v.get("deleted").filter(|d| !d.is_null()) {
            out.push_str(&format!(
                "\nDELETED by the network operator: {}",
                s(&d["reason"])
            ));
        }
        if let Some(f) = v.get("forked").filter(|f| !f.is_null()) {
            out.push_str(&format!(
                "\nFORKED at seq {}: conflicting signed records {}; no release is accepted until an owner runs `ferry fork resolve`",
                f["seq"],
                f["candidates"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", ")
            ));
        }
        for gr in v["grants"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\ngrant: {} may {} (record {})",
                s(&gr["key"]),
                gr["perms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect::<Vec<_>>()
                    .join(", "),
                s(&gr["record"])
            ));
        }
        for r in v["versions"].as_array().into_iter().flatten() {
            let mut flags = String::new();
            if let Some(y) = r.get("yanked").filter(|y| !y.is_null()) {
                flags.push_str(&format!(
                    "  [yanked: {}]",
                    y["reason"].as_str().unwrap_or("no reason given")
                ));
            }
            if let Some(d) = r.get("deleted").filter(|d| !d.is_null()) {
                flags.push_str(&format!("  [deleted: {}]", s(&d["reason"])));
            }
            out.push_str(&format!(
                "\n  {}  {}  {}{}{}",
                s(&r["version"]),
                human_size(r["size"].as_u64().unwrap_or(0)),
                s(&r["cid"]),
                r["license"]
                    .as_str()
                    .map(|l| format!("  {l}"))
                    .unwrap_or_default(),
                flags
            ));
            out.push_str(&format!(
                "\n      signed by {} (authorized by record {})",
                s(&r["publisher"]),
                r["authority"].as_str().unwrap_or("?")
            ));
            if let Some(d) = r["description"].as_str() {
                out.push_str(&format!("\n      {d}"));
            }
            contents(r, &mut out);
            for at in r["attestations"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n      attested by {}: {}",
                    s(&at["key"]),
                    s(&at["claim"])
                ));
            }
        }
        out
    })
}

/// `ferry info CID`: the releases whose content this is.
async fn by_content(
    g: &Global,
    client: &Client,
    cid: &ferry_protocol::ContentId,
    network: Option<&ferry_protocol::NetworkId>,
) -> Result<()> {
    let mut path = format!("/v1/content/{}", enc(&cid.to_string()));
    if let Some(n) = network {
        path.push_str(&format!("?network={}", enc(&n.to_string())));
    }
    let v: Value = client.get(&path).await?;
    emit(g.json, &v, |v| {
        let mut out = format!("content {} ({})", s(&v["cid"]), s(&v["sha256"]));
        for r in v["releases"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\n  {}@{}  {}  signed by {}",
                s(&r["package"]),
                s(&r["version"]),
                human_size(r["size"].as_u64().unwrap_or(0)),
                s(&r["publisher"])
            ));
            if r.get("yanked").is_some_and(|y| !y.is_null()) {
                out.push_str("  [yanked]");
            }
            contents(r, &mut out);
        }
        out
    })
}
