//! Signed statements about packages and the network: grants, revocations, yanks,
//! deletions, policy, attestations, fork resolution. Each becomes one record signed by
//! this node's publisher key; the node validates it exactly as every other node will.

use anyhow::{Context, Result};
use ferry_protocol::record::{Attestation, Body, Perm, Target};
use ferry_protocol::{ContentId, Namespace, PackageName, PublicKey, RecordId};
use reqwest::Method;
use serde_json::json;

use crate::Global;
use crate::client::{Client, enc};
use crate::output::emit;

/// Signs and appends `body` to `log`, printing the new record.
pub async fn append(g: &Global, log: &str, body: Body, what: &str) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let v: serde_json::Value = client
        .send(
            client
                .request(Method::POST, "/v1/records")
                .json(&json!({ "log": log, "body": body })),
        )
        .await
        .with_context(|| what.to_string())?
        .json()
        .await?;
    emit(g.json, &v, |v| {
        format!(
            "{what}: done (record {})",
            v["record"].as_str().unwrap_or("")
        )
    })
}

/// `NS:NAME@VERSION`, split.
#[derive(Debug, Clone)]
pub struct PackageVersion {
    /// The package.
    pub package: PackageName,
    /// The version.
    pub version: semver::Version,
}

impl std::str::FromStr for PackageVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (p, v) = s
            .split_once('@')
            .ok_or_else(|| format!("`{s}` needs a version: NS:NAME@X.Y.Z"))?;
        Ok(Self {
            package: p
                .parse()
                .map_err(|e: ferry_protocol::name::NameError| e.to_string())?,
            version: semver::Version::parse(v)
                .map_err(|_| format!("`{v}` is not a semver version"))?,
        })
    }
}

/// Arguments of `ferry grant`.
#[derive(clap::Args, Debug)]
pub struct GrantArgs {
    /// The package.
    package: PackageName,
    /// The key to grant (see `ferry key show`).
    key: PublicKey,
    /// Permission (repeatable): release, yank.
    #[arg(long = "perm", value_parser = parse_perm, required = true)]
    perms: Vec<Perm>,
}

fn parse_perm(s: &str) -> Result<Perm, String> {
    match s {
        "release" => Ok(Perm::Release),
        "yank" => Ok(Perm::Yank),
        _ => Err(format!("unknown permission `{s}`: use release or yank")),
    }
}

/// Runs `ferry grant`.
pub async fn grant(g: &Global, a: GrantArgs) -> Result<()> {
    let what = format!(
        "granting {} on {} to {}",
        perms_text(&a.perms),
        a.package,
        a.key
    );
    append(
        g,
        &a.package.to_string(),
        Body::Grant {
            key: a.key,
            perms: a.perms,
        },
        &what,
    )
    .await
}

fn perms_text(p: &[Perm]) -> String {
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// Arguments of `ferry revoke`.
#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// The package.
    package: PackageName,
    /// The key whose grants end.
    key: PublicKey,
}

/// Runs `ferry revoke`.
pub async fn revoke(g: &Global, a: RevokeArgs) -> Result<()> {
    let what = format!("revoking {} on {}", a.key, a.package);
    append(
        g,
        &a.package.to_string(),
        Body::Revoke { key: a.key },
        &what,
    )
    .await
}

/// Arguments of `ferry yank`.
#[derive(clap::Args, Debug)]
pub struct YankArgs {
    /// `NS:NAME@VERSION`.
    target: PackageVersion,
    /// Why (shown by `info` and by fetches of this version).
    #[arg(long)]
    reason: Option<String>,
}

/// Runs `ferry yank`.
pub async fn yank(g: &Global, a: YankArgs) -> Result<()> {
    let what = format!("yanking {}@{}", a.target.package, a.target.version);
    let body = Body::Yank {
        version: a.target.version.to_string(),
        reason: a.reason,
    };
    append(g, &a.target.package.to_string(), body, &what).await
}

/// Arguments of `ferry unyank`.
#[derive(clap::Args, Debug)]
pub struct UnyankArgs {
    /// `NS:NAME@VERSION`.
    target: PackageVersion,
}

/// Runs `ferry unyank`.
pub async fn unyank(g: &Global, a: UnyankArgs) -> Result<()> {
    let what = format!("unyanking {}@{}", a.target.package, a.target.version);
    let body = Body::Unyank {
        version: a.target.version.to_string(),
    };
    append(g, &a.target.package.to_string(), body, &what).await
}

/// Arguments of `ferry delete`.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// `NS:NAME`, `NS:NAME@VERSION`, a CID or sha256:<hex>.
    target: String,
    /// Why: every node shows it to whoever asks for the content.
    #[arg(long, required = true)]
    reason: String,
}

/// Runs `ferry delete` (operator keys only).
pub async fn delete(g: &Global, a: DeleteArgs) -> Result<()> {
    let target = if let Ok(pv) = a.target.parse::<PackageVersion>() {
        Target::Version {
            package: pv.package.to_string(),
            version: pv.version.to_string(),
        }
    } else if let Ok(p) = a.target.parse::<PackageName>() {
        Target::Package {
            package: p.to_string(),
        }
    } else {
        let content: ContentId = a.target.parse().map_err(|_| {
            crate::UsageError(format!(
                "`{}` is neither NS:NAME[@VERSION] nor a content id",
                a.target
            ))
        })?;
        Target::Content { content }
    };
    let what = format!("deleting {target}");
    append(
        g,
        "operator",
        Body::Delete {
            target,
            reason: a.reason,
        },
        &what,
    )
    .await
}

/// Arguments of `ferry attest`.
#[derive(clap::Args, Debug)]
pub struct AttestArgs {
    /// `NS:NAME@VERSION`.
    target: PackageVersion,
    /// The claim, e.g. "reviewed", "reproducible build".
    #[arg(long)]
    claim: String,
    /// A JSON file with details, attached to the attestation.
    #[arg(long)]
    data: Option<std::path::PathBuf>,
}

/// Runs `ferry attest`.
pub async fn attest(g: &Global, a: AttestArgs) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let spec = format!("{}@{}", a.target.package, a.target.version);
    let r: serde_json::Value = client
        .get(&format!("/v1/resolve?spec={}", enc(&spec)))
        .await
        .with_context(|| format!("looking up {spec}"))?;
    let release: RecordId = r["record"].as_str().unwrap_or("").parse()?;
    let data = match &a.data {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            Some(text)
        }
        None => None,
    };
    let body = Body::Attest(Attestation {
        package: a.target.package.to_string(),
        version: a.target.version.to_string(),
        release,
        claim: a.claim,
        data,
    });
    append(g, "", body, &format!("attesting {spec}")).await
}

/// `ferry network …`.
#[derive(clap::Subcommand, Debug)]
pub enum NetworkCommand {
    /// Set the network policy (operator keys only).
    Policy {
        /// Every release must carry a valid SPDX license expression.
        #[arg(long, conflicts_with = "no_require_spdx")]
        require_spdx: bool,
        /// Lift that requirement.
        #[arg(long)]
        no_require_spdx: bool,
    },
}

/// Runs `ferry network …`.
pub async fn network(g: &Global, c: NetworkCommand) -> Result<()> {
    match c {
        NetworkCommand::Policy {
            require_spdx,
            no_require_spdx,
        } => {
            if !require_spdx && !no_require_spdx {
                return Err(
                    crate::UsageError("say --require-spdx or --no-require-spdx".into()).into(),
                );
            }
            let what = format!("setting policy require-spdx={require_spdx}");
            append(g, "operator", Body::SetPolicy { require_spdx }, &what).await
        }
    }
}

/// `ferry operator …`.
#[derive(clap::Subcommand, Debug)]
pub enum OperatorCommand {
    /// Make a key an operator of the network.
    Grant {
        /// The key.
        key: PublicKey,
    },
    /// Remove an operator key (the last one cannot be removed).
    Revoke {
        /// The key.
        key: PublicKey,
    },
}

/// Runs `ferry operator …`.
pub async fn operator(g: &Global, c: OperatorCommand) -> Result<()> {
    match c {
        OperatorCommand::Grant { key } => {
            append(
                g,
                "operator",
                Body::GrantOperator { key },
                &format!("granting operator to {key}"),
            )
            .await
        }
        OperatorCommand::Revoke { key } => {
            append(
                g,
                "operator",
                Body::RevokeOperator { key },
                &format!("revoking operator {key}"),
            )
            .await
        }
    }
}

/// Namespace ownership changes (operator keys only).
pub async fn namespace_owner(g: &Global, ns: Namespace, key: PublicKey, grant: bool) -> Result<()> {
    let (body, what) = if grant {
        (
            Body::GrantNamespace {
                namespace: ns.to_string(),
                key,
            },
            format!("granting namespace {ns} to {key}"),
        )
    } else {
        (
            Body::RevokeNamespace {
                namespace: ns.to_string(),
                key,
            },
            format!("revoking {key} from namespace {ns}"),
        )
    };
    append(g, "operator", body, &what).await
}

/// `ferry fork …`.
#[derive(clap::Subcommand, Debug)]
pub enum ForkCommand {
    /// End a fork by keeping one of the conflicting records (namespace owners only).
    Resolve {
        /// The forked package.
        package: PackageName,
        /// The record to keep (one of the candidates `ferry info` lists).
        #[arg(long)]
        keep: RecordId,
    },
}

/// Runs `ferry fork …`.
pub async fn fork(g: &Global, c: ForkCommand) -> Result<()> {
    match c {
        ForkCommand::Resolve { package, keep } => {
            let what = format!("resolving the fork of {package} by keeping {keep}");
            append(g, &package.to_string(), Body::ResolveFork { keep }, &what).await
        }
    }
}

/// Arguments of `ferry verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A file obtained elsewhere.
    file: std::path::PathBuf,
}

/// Runs `ferry verify`: which signed releases, if any, have exactly these bytes.
pub async fn verify(g: &Global, a: VerifyArgs) -> Result<()> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let client = Client::new(&g.data_dir)?;
    let v: serde_json::Value = client
        .send(client.request(Method::POST, "/v1/verify").body(bytes))
        .await
        .with_context(|| format!("{} matches no signed release", a.file.display()))?
        .json()
        .await?;
    emit(g.json, &v, |v| {
        let mut out = format!(
            "{}: {} ({})",
            a.file.display(),
            v["cid"].as_str().unwrap_or(""),
            v["sha256"].as_str().unwrap_or("")
        );
        for r in v["releases"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\n  {}@{} signed by {} (authorized by record {})",
                r["package"].as_str().unwrap_or(""),
                r["version"].as_str().unwrap_or(""),
                r["publisher"].as_str().unwrap_or(""),
                r["authority"].as_str().unwrap_or("?"),
            ));
            if let Some(y) = r.get("yanked").filter(|y| !y.is_null()) {
                out.push_str(&format!(
                    "\n    yanked: {}",
                    y["reason"].as_str().unwrap_or("no reason given")
                ));
            }
            if let Some(d) = r.get("deleted").filter(|d| !d.is_null()) {
                out.push_str(&format!(
                    "\n    DELETED by the operator: {}",
                    d["reason"].as_str().unwrap_or("")
                ));
            }
            for at in r["attestations"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n    attested by {}: {}",
                    at["key"].as_str().unwrap_or(""),
                    at["claim"].as_str().unwrap_or("")
                ));
            }
        }
        out
    })
}
