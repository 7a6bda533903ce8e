//! A client of the local node's API, found through `<data-dir>/node.json`.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use ferry_node::data_dir::DataDir;
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

/// An error answer of the node's API: its HTTP status and one-line message. Callers
/// that must tell "deleted" (410) or "unknown" (404) apart downcast to it.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The node's message.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// The API status of an error, if the node answered one.
pub fn api_status(e: &anyhow::Error) -> Option<u16> {
    e.downcast_ref::<ApiError>().map(|a| a.status)
}

/// A connection to the local node.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// Connects to the node of `data_dir`.
    pub fn new(data_dir: &Path) -> Result<Self> {
        let dir = DataDir::open(data_dir)?;
        let info = dir.node_info().map_err(|_| {
            anyhow!(
                "no node is running for {} (start one with `ferry --data-dir {} node start`)",
                data_dir.display(),
                data_dir.display()
            )
        })?;
        let token = std::fs::read_to_string(dir.path("api.token"))
            .ok()
            .map(|t| t.trim().to_string());
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: info.api,
            token,
        })
    }

    /// A request to `path`, with the token attached.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// Sends a request and returns the response if it succeeded, else the API's error.
    pub async fn send(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the node's API at {}: {e} (is `ferry node start` running?)",
                self.base
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| format!("{status}: {body}"));
        Err(ApiError {
            status: status.as_u16(),
            message: msg,
        }
        .into())
    }

    /// GET returning JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(self.request(Method::GET, path)).await?;
        resp.json().await.context("decoding the node's answer")
    }
}

/// Percent-encodes a query or path component.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
