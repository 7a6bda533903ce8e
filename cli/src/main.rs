//! `ferry`: run a Ferry node and talk to it.
//!
//! Every command except `init` and `node start` is a client of the local node's HTTP
//! API, found through `<data-dir>/node.json`. Exit codes: 0 ok, 1 failure, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod assets;
mod blob;
mod client;
mod cmd;
mod output;
mod project;
mod project_dir;
mod registry;

/// A peer-to-peer registry for WebAssembly components and WIT packages.
#[derive(Parser, Debug)]
#[command(name = "ferry", version, about)]
struct Cli {
    /// Data directory of the node (keys, index, blobs).
    #[arg(long, env = "FERRY_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create this node's keys, and a new network or membership of an existing one.
    Init(cmd::init::Args),
    /// Run or inspect the node daemon.
    #[command(subcommand)]
    Node(cmd::node::NodeCommand),
    /// Show this node's publisher key.
    #[command(subcommand)]
    Key(cmd::key::KeyCommand),
    /// Manage namespaces (operator only).
    #[command(subcommand)]
    Namespace(cmd::namespace::NamespaceCommand),
    /// Publish a component or WIT package.
    Publish(cmd::publish::Args),
    /// Fetch a package by name@version-requirement or by content id, verified.
    Fetch(cmd::fetch::Args),
    /// Search packages by name, description, or the interfaces they export or import.
    Search(cmd::search::Args),
    /// Show a package or release: versions, imports, exports, capabilities, signers.
    Info(cmd::info::Args),
    /// Print the README published with a release.
    Readme(cmd::info::DocArgs),
    /// Print the license text published with a release.
    License(cmd::info::DocArgs),
    /// Check whether a component fits a world published to the registry.
    Check(cmd::check::Args),
    /// Give a key permissions on a package (namespace owners only).
    Grant(cmd::trust::GrantArgs),
    /// Take a key's permissions on a package away (namespace owners only).
    Revoke(cmd::trust::RevokeArgs),
    /// Mark a version as not to be picked by version requirements.
    Yank(cmd::trust::YankArgs),
    /// Reverse a yank.
    Unyank(cmd::trust::UnyankArgs),
    /// Delete violating content from the network (operator keys only).
    Delete(cmd::trust::DeleteArgs),
    /// Attach a signed statement to a release (any key).
    Attest(cmd::trust::AttestArgs),
    /// Tell whether a file matches a signed release.
    Verify(cmd::trust::VerifyArgs),
    /// Network-wide settings (operator keys only).
    #[command(subcommand)]
    Network(cmd::trust::NetworkCommand),
    /// Manage operator keys (operator keys only).
    #[command(subcommand)]
    Operator(cmd::trust::OperatorCommand),
    /// Snapshots of a filtered subset of the network: export to a directory, import
    /// on a node without network.
    #[command(subcommand)]
    Mirror(cmd::mirror::MirrorCommand),
    /// Resolve an equivocation in a package log.
    #[command(subcommand)]
    Fork(cmd::trust::ForkCommand),
    /// Create a project: ferry.toml, a WIT world, a source skeleton and a README.
    New(cmd::new::Args),
    /// Resolve ferry.toml's dependencies into ferry.lock (locked versions are kept).
    Lock(cmd::lock::Args),
    /// Resolve dependencies again, moving locked versions (all, or the named ones).
    Update(cmd::update::Args),
    /// Fetch exactly the locked content into the project, verified.
    Install(cmd::install::Args),
    /// WIT dependencies of the project's wit/ folder.
    #[command(subcommand)]
    Wit(cmd::wit::WitCommand),
    /// Choose the packages this node replicates: follows, fetches, serves and keeps.
    #[command(subcommand)]
    Pin(cmd::pin::PinCommand),
    /// Free stored blobs that no pin, cache entry or own release needs.
    Gc(cmd::gc::Args),
    /// Blobs kept because this node's user fetched them.
    #[command(subcommand)]
    Cache(cmd::gc::CacheCommand),
}

/// A usage mistake found after parsing; exits with code 2 like clap's own.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Options every command gets.
pub struct Global {
    /// The data directory.
    pub data_dir: PathBuf,
    /// JSON output.
    pub json: bool,
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ferry")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global {
        data_dir: cli.data_dir.unwrap_or_else(default_data_dir),
        json: cli.json,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let res = rt.block_on(async {
        match cli.command {
            Command::Init(a) => cmd::init::run(&global, a).await,
            Command::Node(c) => cmd::node::run(&global, c).await,
            Command::Key(c) => cmd::key::run(&global, c).await,
            Command::Namespace(c) => cmd::namespace::run(&global, c).await,
            Command::Publish(a) => cmd::publish::run(&global, a).await,
            Command::Fetch(a) => cmd::fetch::run(&global, a).await,
            Command::Search(a) => cmd::search::run(&global, a).await,
            Command::Info(a) => cmd::info::run(&global, a).await,
            Command::Readme(a) => cmd::info::doc(&global, a, "readme").await,
            Command::License(a) => cmd::info::doc(&global, a, "license-text").await,
            Command::Check(a) => cmd::check::run(&global, a).await,
            Command::Grant(a) => cmd::trust::grant(&global, a).await,
            Command::Revoke(a) => cmd::trust::revoke(&global, a).await,
            Command::Yank(a) => cmd::trust::yank(&global, a).await,
            Command::Unyank(a) => cmd::trust::unyank(&global, a).await,
            Command::Delete(a) => cmd::trust::delete(&global, a).await,
            Command::Attest(a) => cmd::trust::attest(&global, a).await,
            Command::Verify(a) => cmd::trust::verify(&global, a).await,
            Command::Network(c) => cmd::trust::network(&global, c).await,
            Command::Operator(c) => cmd::trust::operator(&global, c).await,
            Command::Fork(c) => cmd::trust::fork(&global, c).await,
            Command::New(a) => cmd::new::run(&global, a).await,
            Command::Lock(a) => cmd::lock::run(&global, a).await,
            Command::Update(a) => cmd::update::run(&global, a).await,
            Command::Install(a) => cmd::install::run(&global, a).await,
            Command::Wit(c) => cmd::wit::run(&global, c).await,
            Command::Pin(c) => cmd::pin::run(&global, c).await,
            Command::Gc(a) => cmd::gc::run(&global, a).await,
            Command::Cache(c) => cmd::gc::cache(&global, c).await,
            Command::Mirror(c) => cmd::mirror::run(&global, c).await,
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if output::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            // The whole chain on one line, as ripgrep does.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("ferry: {}", chain.join(": "));
            if e.downcast_ref::<UsageError>().is_some() {
                return ExitCode::from(2);
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
