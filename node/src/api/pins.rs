//! Pin, garbage-collection and cache endpoints. Changes need the API token.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use ferry_protocol::PublicKey;
use ferry_protocol::filter::{Filter, Pattern};
use ferry_protocol::pin::Pin;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, AppState, bad, blocking, check_token};
use crate::command::{GcError, GcReport, PinError};

/// Longest list of excludes, licenses or signers one pin may carry.
const MAX_PIN_LIST: usize = 256;

impl From<PinError> for ApiError {
    fn from(e: PinError) -> Self {
        let status = match e {
            PinError::NotPinned(_) => StatusCode::NOT_FOUND,
            PinError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            PinError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl From<GcError> for ApiError {
    fn from(e: GcError) -> Self {
        let status = match e {
            GcError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            GcError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

/// A pin as the API takes it: every field is text, checked here.
#[derive(Deserialize)]
pub(super) struct PinBody {
    pattern: String,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    licenses: Vec<String>,
    #[serde(default)]
    signers: Vec<String>,
    max_size: Option<u64>,
}

fn pattern(s: &str) -> Result<Pattern, ApiError> {
    s.parse().map_err(bad)
}

impl PinBody {
    fn into_pin(self) -> Result<Pin, ApiError> {
        if self.exclude.len() > MAX_PIN_LIST
            || self.licenses.len() > MAX_PIN_LIST
            || self.signers.len() > MAX_PIN_LIST
        {
            return Err(bad(format!(
                "pin {}: at most {MAX_PIN_LIST} excludes, licenses and signers each",
                self.pattern
            )));
        }
        let include = pattern(&self.pattern)?;
        let exclude = self
            .exclude
            .iter()
            .map(|p| pattern(p))
            .collect::<Result<_, _>>()?;
        let signers = self
            .signers
            .iter()
            .map(|k| {
                k.parse::<PublicKey>()
                    .map_err(|e| bad(format!("pin {}: signer {k}: {e}", self.pattern)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filter = Filter {
            include: vec![include],
            exclude,
            licenses: (!self.licenses.is_empty()).then_some(self.licenses),
            signers: (!signers.is_empty()).then_some(signers),
            max_size: self.max_size,
        };
        Pin::try_from(filter).map_err(bad)
    }
}

/// One pin in `pin ls`.
#[derive(Serialize)]
struct PinView {
    pattern: String,
    #[serde(flatten)]
    filter: Filter,
    /// Releases the pin admits.
    releases: usize,
    /// Blobs of those releases (contents and attachments).
    blobs: usize,
    /// How many of them are stored here.
    stored: usize,
    /// Bytes of those blobs, and of the stored ones.
    bytes: u64,
    stored_bytes: u64,
}

pub(super) async fn list(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let shared = s.shared.clone();
    blocking(move || {
        let pins = shared.index.pins()?;
        let blobs = shared.index.pinned_blobs(&pins)?;
        let mut views: BTreeMap<String, PinView> = pins
            .iter()
            .map(|p| {
                (
                    p.pattern().to_string(),
                    PinView {
                        pattern: p.pattern().to_string(),
                        filter: p.filter().clone(),
                        releases: 0,
                        blobs: 0,
                        stored: 0,
                        bytes: 0,
                        stored_bytes: 0,
                    },
                )
            })
            .collect();
        let mut seen_releases = HashSet::new();
        for b in &blobs {
            let Some(v) = views.get_mut(&b.pin.to_string()) else {
                continue;
            };
            if seen_releases.insert(b.entry.record) {
                v.releases += 1;
            }
            v.blobs += 1;
            v.bytes += b.size;
            if shared.blobs.has(&b.content) {
                v.stored += 1;
                v.stored_bytes += b.size;
            }
        }
        let list: Vec<PinView> = views.into_values().collect();
        Ok(Json(json!({ "pins": list })))
    })
    .await
}

pub(super) async fn add(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<PinBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&s, &headers)?;
    let pin = b.into_pin()?;
    let pattern = pin.pattern().to_string();
    let replaced = s.node.add_pin(pin).await?;
    Ok(Json(json!({ "pattern": pattern, "replaced": replaced })))
}

#[derive(Deserialize)]
pub(super) struct PatternQuery {
    pattern: String,
}

pub(super) async fn remove(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PatternQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&s, &headers)?;
    let p = pattern(&q.pattern)?;
    s.node.remove_pin(p.clone()).await?;
    Ok(Json(json!({ "pattern": p.to_string(), "removed": true })))
}

#[derive(Deserialize)]
pub(super) struct GcQuery {
    #[serde(default)]
    dry_run: bool,
}

pub(super) async fn gc(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<GcQuery>,
) -> Result<Json<GcReport>, ApiError> {
    check_token(&s, &headers)?;
    Ok(Json(s.node.gc(q.dry_run).await?))
}

/// One cache entry in `cache ls`.
#[derive(Serialize)]
struct CacheView {
    cid: String,
    bytes: u64,
    last_use_ms: u64,
    /// Releases with this blob, as `ns:name@version`.
    releases: Vec<String>,
}

pub(super) async fn cache(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let shared = s.shared.clone();
    blocking(move || {
        let mut out = Vec::new();
        for (id, used) in shared.index.cache()? {
            // Entries for blobs that never arrived (a failed fetch) are not cache.
            let Some(bytes) = shared.blobs.size(&id) else {
                continue;
            };
            let releases = shared
                .index
                .releases_by_content(&id)?
                .iter()
                .map(|r| format!("{}@{}", r.package, r.version))
                .collect();
            out.push(CacheView {
                cid: id.to_string(),
                bytes,
                last_use_ms: used,
                releases,
            });
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.last_use_ms));
        Ok(Json(json!({ "entries": out })))
    })
    .await
}

pub(super) async fn clear_cache(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<GcReport>, ApiError> {
    check_token(&s, &headers)?;
    Ok(Json(s.node.clear_cache().await?))
}
