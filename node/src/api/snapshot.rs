//! Snapshot endpoints: export a filtered subset to a directory, import one. Both need
//! the API token: they read or write files on this machine as the node's user.

use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ferry_protocol::filter::Filter;
use serde::Deserialize;

use super::{ApiError, AppState, bad, blocking, check_token};
use crate::node::now_ms;
use crate::snapshot::{self, ExportError, ImportError, Imported, Manifest};

#[derive(Deserialize)]
pub(super) struct ExportBody {
    /// Absolute path of the directory to write.
    dir: String,
    /// What to include.
    filter: Filter,
    /// Export from this mirror instead of the node's own network.
    network: Option<String>,
}

fn absolute(dir: &str) -> Result<PathBuf, ApiError> {
    let p = PathBuf::from(dir);
    if !p.is_absolute() {
        return Err(bad(format!(
            "`{dir}` is not an absolute path: the node does not share the client's working directory"
        )));
    }
    Ok(p)
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        let status = match e {
            ExportError::NotEmpty(_) | ExportError::EmptyFilter => StatusCode::BAD_REQUEST,
            ExportError::NotSynced => StatusCode::SERVICE_UNAVAILABLE,
            ExportError::Io { .. } | ExportError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        let status = match e {
            ImportError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError(
            status,
            format!("snapshot refused, nothing was imported: {e}"),
        )
    }
}

/// Writes a snapshot of what the filter covers.
pub(super) async fn export(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<ExportBody>,
) -> Result<Json<Manifest>, ApiError> {
    check_token(&s, &headers)?;
    let dir = absolute(&b.dir)?;
    let net = super::mirrors::nets(&s, b.network.as_deref())?.swap_remove(0);
    let shared = net.state.shared.clone();
    let m = blocking(move || {
        Ok(snapshot::export(
            &shared.index,
            &shared.blobs,
            &b.filter,
            &dir,
            now_ms(),
        )?)
    })
    .await?;
    Ok(Json(m))
}

#[derive(Deserialize)]
pub(super) struct ImportBody {
    /// Absolute path of the snapshot directory.
    dir: String,
}

/// Verifies and imports a snapshot, then lets the event loop act on what is new
/// (subscribe to namespaces, drop deleted blobs, provide the new blobs).
pub(super) async fn import(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<ImportBody>,
) -> Result<Json<Imported>, ApiError> {
    check_token(&s, &headers)?;
    let dir = absolute(&b.dir)?;
    let snap = blocking(move || Ok(snapshot::Snapshot::open(&dir)?)).await?;
    // A snapshot of a network this node mirrors goes into that mirror's index.
    let net = super::mirrors::nets(&s, None)?
        .into_iter()
        .find(|n| n.id == snap.network())
        .map(|n| n.state)
        .unwrap_or_else(|| s.clone());
    let shared = net.shared.clone();
    let mut imported =
        blocking(move || Ok(snap.import(&shared.index, &shared.blobs, now_ms())?)).await?;
    let effects = std::mem::take(&mut imported.effects);
    net.node.imported(effects, imported.new_blobs.clone()).await;
    Ok(Json(imported))
}
