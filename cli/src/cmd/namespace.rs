//! `ferry namespace`: operator commands on namespaces.

use anyhow::{Context, Result};
use clap::Subcommand;
use ferry_protocol::{Namespace, PublicKey};
use reqwest::Method;
use serde_json::json;

use crate::Global;
use crate::client::Client;
use crate::output::emit;

/// Subcommands of `ferry namespace`.
#[derive(Subcommand, Debug)]
pub enum NamespaceCommand {
    /// Define a namespace and its owner keys (operator key only).
    Define {
        /// The namespace, e.g. `acme`.
        namespace: Namespace,
        /// Owner key (repeatable); default: this node's publisher key.
        #[arg(long = "owner", value_name = "PUBKEY")]
        owners: Vec<PublicKey>,
    },
    /// Add an owner key to a namespace.
    Grant {
        /// The namespace.
        namespace: Namespace,
        /// The key.
        key: PublicKey,
    },
    /// Remove an owner key from a namespace; its later records are refused.
    Revoke {
        /// The namespace.
        namespace: Namespace,
        /// The key.
        key: PublicKey,
    },
}

/// Runs `ferry namespace …`.
pub async fn run(g: &Global, c: NamespaceCommand) -> Result<()> {
    match c {
        NamespaceCommand::Grant { namespace, key } => {
            crate::cmd::trust::namespace_owner(g, namespace, key, true).await
        }
        NamespaceCommand::Revoke { namespace, key } => {
            crate::cmd::trust::namespace_owner(g, namespace, key, false).await
        }
        NamespaceCommand::Define { namespace, owners } => {
            let client = Client::new(&g.data_dir)?;
            let body = json!({
                "namespace": namespace.to_string(),
                "owners": owners.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
            });
            let v: serde_json::Value = client
                .send(client.request(Method::POST, "/v1/namespaces").json(&body))
                .await
                .with_context(|| format!("defining namespace {namespace}"))?
                .json()
                .await?;
            emit(g.json, &v, |v| {
                format!(
                    "defined namespace {} (owners: {})",
                    namespace,
                    v["owners"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        }
    }
}
