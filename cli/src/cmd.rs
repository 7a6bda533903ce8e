//! One module per command.

pub mod check;
pub mod fetch;
pub mod info;
pub mod init;
pub mod key;
pub mod namespace;
pub mod node;
pub mod publish;
pub mod search;
pub mod trust;
