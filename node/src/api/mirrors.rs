//! Mirrors in the API: managing them (`/v1/mirrors`), and the read endpoints that
//! answer from the node's own network and from its mirrors.
//!
//! Reads go to the node's own network first, then to each mirror in network-id order;
//! `?network=ID` (or `"network"` in a fetch body) asks one network only. Every answer
//! says which network it comes from (`network`, and `mirror: true` for a mirror), so a
//! user can tell a package of the organization's own network from a mirrored one with
//! the same name.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use ferry_protocol::NetworkId;
use ferry_protocol::filter::Filter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::read::{InfoQuery, SearchQuery, SpecQuery};
use super::{ApiError, AppState, bad, check_token, not_found};
use crate::mirror::{MirrorConfig, MirrorError};
use crate::node::now_ms;

impl From<MirrorError> for ApiError {
    fn from(e: MirrorError) -> Self {
        let status = match e {
            MirrorError::NotFound(_) => StatusCode::NOT_FOUND,
            MirrorError::OwnNetwork(_)
            | MirrorError::EmptyFilter
            | MirrorError::BadBootstrap(_)
            | MirrorError::BadFilter(_)
            | MirrorError::OverLimit(_) => StatusCode::BAD_REQUEST,
            MirrorError::DataDir(_)
            | MirrorError::Corrupt { .. }
            | MirrorError::Index(_)
            | MirrorError::Start { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

/// One network this node answers for.
pub(super) struct Net {
    pub(super) id: NetworkId,
    pub(super) mirror: bool,
    pub(super) state: AppState,
}

/// The node's own network and its running mirrors, or only the one `select` names.
pub(super) fn nets(s: &AppState, select: Option<&str>) -> Result<Vec<Net>, ApiError> {
    let own = Net {
        id: s.shared.index.network(),
        mirror: false,
        state: s.clone(),
    };
    let mut all = vec![own];
    for i in s.mirrors.instances() {
        all.push(Net {
            id: i.config.network,
            mirror: true,
            state: AppState {
                shared: i.shared,
                node: i.handle,
                mirrors: s.mirrors.clone(),
            },
        });
    }
    let Some(sel) = select.filter(|v| !v.is_empty()) else {
        return Ok(all);
    };
    let id: NetworkId = sel.parse().map_err(bad)?;
    let one: Vec<Net> = all.into_iter().filter(|n| n.id == id).collect();
    if one.is_empty() {
        return Err(not_found(format!(
            "this node neither belongs to nor mirrors network {id} (see `ferry mirror ls`)"
        )));
    }
    Ok(one)
}

/// `v` with the network it comes from.
fn tagged(v: impl Serialize, net: &Net) -> Value {
    let mut v = serde_json::to_value(v).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("network".into(), json!(net.id.to_string()));
        o.insert("mirror".into(), json!(net.mirror));
    }
    v
}

#[derive(Deserialize)]
pub(super) struct Select {
    network: Option<String>,
}

/// Asks each network in turn; the first answer other than "not found" wins.
async fn first_found<F, Fut, T>(nets: Vec<Net>, mut ask: F) -> Result<Json<Value>, ApiError>
where
    F: FnMut(AppState) -> Fut,
    Fut: std::future::Future<Output = Result<Json<T>, ApiError>>,
    T: Serialize,
{
    let mut first_miss = None;
    for net in nets {
        match ask(net.state.clone()).await {
            Ok(Json(v)) => return Ok(Json(tagged(v, &net))),
            Err(e) if e.0 == StatusCode::NOT_FOUND => {
                first_miss.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_miss.unwrap_or_else(|| not_found("no network answered")))
}

fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<Query<T>, ApiError> {
    Query::try_from_uri(uri).map_err(bad)
}

pub(super) async fn search(
    State(s): State<AppState>,
    Query(sel): Query<Select>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let nets = nets(&s, sel.network.as_deref())?;
    let limit = query::<LimitQuery>(&uri)?.0.limit.unwrap_or(50).min(1000);
    let mut out = Vec::new();
    for net in nets {
        let q = query::<SearchQuery>(&uri)?;
        let Json(hits) = super::read::search(State(net.state.clone()), q).await?;
        for h in hits.as_array().into_iter().flatten() {
            out.push(tagged(h, &net));
        }
    }
    out.truncate(limit);
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

pub(super) async fn info(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(sel): Query<Select>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let nets = nets(&s, sel.network.as_deref())?;
    first_found(nets, |state| {
        let name = name.clone();
        let q = query::<InfoQuery>(&uri);
        async move { super::read::info(State(state), Path(name), q?).await }
    })
    .await
}

pub(super) async fn resolve(
    State(s): State<AppState>,
    Query(sel): Query<Select>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let nets = nets(&s, sel.network.as_deref())?;
    first_found(nets, |state| {
        let q = query::<SpecQuery>(&uri);
        async move { super::read::resolve(State(state), q?).await }
    })
    .await
}

pub(super) async fn content(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    Query(sel): Query<Select>,
) -> Result<Json<Value>, ApiError> {
    let nets = nets(&s, sel.network.as_deref())?;
    let mut releases = Vec::new();
    let mut answer = None;
    let mut first_miss = None;
    for net in nets {
        match super::read::content(State(net.state.clone()), Path(cid.clone())).await {
            Ok(Json(v)) => {
                for r in v["releases"].as_array().into_iter().flatten() {
                    releases.push(tagged(r, &net));
                }
                answer.get_or_insert(v);
            }
            Err(e) if e.0 == StatusCode::NOT_FOUND => {
                first_miss.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    let Some(mut v) = answer else {
        return Err(first_miss.unwrap_or_else(|| not_found("no network answered")));
    };
    v["releases"] = Value::Array(releases);
    Ok(Json(v))
}

#[derive(Deserialize)]
pub(super) struct FetchBody {
    spec: String,
    require_attestation: Option<String>,
    network: Option<String>,
}

pub(super) async fn fetch(
    State(s): State<AppState>,
    Json(b): Json<FetchBody>,
) -> Result<Json<Value>, ApiError> {
    let nets = nets(&s, b.network.as_deref())?;
    first_found(nets, |state| {
        let q = SpecQuery {
            spec: b.spec.clone(),
            require_attestation: b.require_attestation.clone(),
        };
        async move { super::fetch::fetch(State(state), Json(q)).await }
    })
    .await
}

/// Download progress, wherever the download runs (a mirror downloads for its own
/// network).
pub(super) async fn progress(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut first_miss = None;
    for net in nets(&s, None)? {
        match super::fetch::progress(State(net.state), Path(cid.clone())).await {
            Err(e) if e.0 == StatusCode::NOT_FOUND => {
                first_miss.get_or_insert(e);
            }
            answer => return answer,
        }
    }
    Err(first_miss.unwrap_or_else(|| not_found("no network answered")))
}

/// `GET /v1/mirrors`: every mirror with its state.
pub(super) async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let status = s.mirrors.status().await?;
    Ok(Json(json!({ "mirrors": status })))
}

#[derive(Deserialize)]
pub(super) struct AddBody {
    network: NetworkId,
    #[serde(default)]
    bootstrap: Vec<String>,
    filter: Filter,
}

/// `POST /v1/mirrors`: adds (or replaces) a mirror and starts it at once.
pub(super) async fn add(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<AddBody>,
) -> Result<Json<Value>, ApiError> {
    check_token(&s, &headers)?;
    let config = MirrorConfig {
        network: b.network,
        bootstrap: b.bootstrap,
        filter: b.filter,
        added_ms: now_ms(),
    };
    let replaced = s.mirrors.add(config.clone()).await?;
    Ok(Json(
        json!({ "mirror": config, "replaced": replaced, "running": true }),
    ))
}

/// `DELETE /v1/mirrors/{network}`: stops a mirror and forgets it.
pub(super) async fn remove(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(network): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_token(&s, &headers)?;
    let id: NetworkId = network.parse().map_err(bad)?;
    let gone = s.mirrors.remove(&id).await?;
    Ok(Json(json!({ "removed": gone })))
}
