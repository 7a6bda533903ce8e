//! One module per command.

pub mod check;
pub mod fetch;
pub mod gc;
pub mod info;
pub mod init;
pub mod install;
pub mod key;
pub mod lock;
pub mod mirror;
pub mod namespace;
pub mod new;
pub mod node;
pub mod pin;
pub mod publish;
pub mod search;
pub mod trust;
pub mod update;
pub mod wit;
