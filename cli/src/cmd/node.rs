//! `ferry node`: run the daemon, or show a running one.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use ferry_node::Multiaddr;
use ferry_node::NodeConfig;

use crate::Global;
use crate::client::Client;
use crate::output::{emit, human_size};

/// Subcommands of `ferry node`.
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Run the node in the foreground until SIGINT or SIGTERM.
    Start {
        /// libp2p listen address (repeatable). Default: loopback TCP and QUIC, free ports.
        #[arg(long = "listen", value_name = "MULTIADDR")]
        listen: Vec<Multiaddr>,
        /// Address of the local HTTP API.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
        api: SocketAddr,
        /// Peer to connect to at start (repeatable), ending in /p2p/<peer id>.
        #[arg(long = "bootstrap", value_name = "MULTIADDR")]
        bootstrap: Vec<Multiaddr>,
        /// If the data directory is not initialized yet, create a new network first
        /// (as `ferry init --new-network` would).
        #[arg(long)]
        init: bool,
        /// Seconds a download may make no progress before fetches of it fail.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        fetch_timeout: u64,
        /// Disk the blob store may take, e.g. `2GiB`: past it the node frees unheld
        /// blobs, then least-recently-used cache entries (never pinned or published
        /// ones), on its own.
        #[arg(long, value_name = "SIZE", value_parser = crate::cmd::pin::parse_size)]
        disk_budget: Option<u64>,
        /// Most MiB per second this node serves to peers, all peers together (default:
        /// no limit). Below 1 MiB/s, peers' 20 s chunk requests start timing out.
        #[arg(long, value_name = "MIB_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
        max_upload_rate: Option<u64>,
    },
    /// Show the running node: network, peer id, addresses, peers, packages.
    Status,
}

/// Runs `ferry node …`.
pub async fn run(g: &Global, c: NodeCommand) -> Result<()> {
    match c {
        NodeCommand::Start {
            listen,
            api,
            bootstrap,
            init,
            fetch_timeout,
            disk_budget,
            max_upload_rate,
        } => {
            if init {
                init_if_needed(g)?;
            }
            let mut cfg = NodeConfig::local(&g.data_dir);
            if !listen.is_empty() {
                cfg.listen = listen;
            }
            cfg.api = api;
            cfg.bootstrap = bootstrap;
            cfg.fetch_timeout = Duration::from_secs(fetch_timeout);
            cfg.disk_budget = disk_budget;
            cfg.max_upload_rate = max_upload_rate.map(|m| m.saturating_mul(1 << 20));
            start(g, cfg).await
        }
        NodeCommand::Status => status(g).await,
    }
}

fn init_if_needed(g: &Global) -> Result<()> {
    let dir = ferry_node::data_dir::DataDir::open(&g.data_dir)?;
    if dir.membership().is_err() {
        let net = ferry_node::init_new_network(&dir)?;
        eprintln!("initialized {} for a new network", g.data_dir.display());
        eprintln!("network: {net}");
    }
    Ok(())
}

async fn start(g: &Global, cfg: NodeConfig) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    };
    ferry_node::run(cfg, shutdown)
        .await
        .with_context(|| format!("running the node in {}", g.data_dir.display()))
}

async fn status(g: &Global) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let mut v: serde_json::Value = client.get("/v1/status").await?;
    let info = ferry_node::data_dir::DataDir::open(&g.data_dir)?.node_info()?;
    v["addrs"] = serde_json::json!(info.addrs);
    v["api"] = serde_json::json!(info.api);
    emit(g.json, &v, |v| {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let mut out = format!(
            "network:   {}\npeer id:   {}\npublisher: {}\napi:       {}\npeers:     {}\npackages:  {}",
            s("network"),
            s("peer_id"),
            s("publisher"),
            s("api"),
            v["peers"],
            v["packages"]
        );
        for a in v["addrs"].as_array().into_iter().flatten() {
            out.push_str(&format!("\naddr:      {}", a.as_str().unwrap_or("")));
        }
        let t = &v["transfer"];
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "\nreceived:  {} in {} chunks ({} bad, refused)\nserved:    {} in {} chunks to peers, {} to local clients\ncache:     {} hits, {} downloads, {} corrupt blobs quarantined",
            human_size(n("received_bytes")),
            n("received_chunks"),
            n("bad_chunks"),
            human_size(n("served_bytes")),
            n("served_chunks"),
            human_size(n("local_bytes")),
            n("cache_hits"),
            n("cache_misses"),
            n("quarantined"),
        ));
        out
    })
}
