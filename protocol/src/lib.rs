//! # ferry-protocol
//!
//! The pure core of Ferry, a peer-to-peer registry for WebAssembly components and WIT
//! packages. Nothing here does I/O, reads a clock or draws randomness: time and random
//! bytes are arguments, so every node (and every simulation) computes the same answers
//! from the same inputs.
//!
//! ## The model
//! - **Blobs** are named by [`ContentId`]: CIDv1, raw codec, sha2-256, the same digest
//!   OCI writes as `sha256:<hex>`. Blobs are split into 1 MiB [`chunk`]s whose digests
//!   the release lists, so each chunk is verified on arrival.
//! - **Records** ([`record::Record`]) are CBOR statements signed with Ed25519 inside an
//!   envelope ([`envelope::SignedRecord`]); a record's id is the CID of the envelope.
//! - **Logs**: each record sits at `seq` in one log and names the id of its predecessor
//!   in `prev`. The *operator log* of a network starts with the genesis record (whose id
//!   is the network id) and defines namespaces and their owner keys. A *package log*
//!   per `namespace:name` starts with `package-init` and holds releases.
//! - **Validation** ([`log::apply_operator`], [`log::apply_package`]) is a pure function
//!   from a log's state and a signed record to the next state or a typed
//!   [`log::Rejection`]. Honest nodes that see the same records reach the same state.
//! - **Assets** ([`assets::AssetTree`]): a directory tree published with a release, each
//!   file a blob; the tree is a blob whose id the signed release carries.
//! - **Component checks** ([`component::check`]) decide whether bytes are a valid
//!   component or WIT package before anything is stored or announced.
//!
//! ```
//! use ferry_protocol::{ContentId, Spec};
//! let id = ContentId::of(b"hello");
//! assert_eq!(id.to_sha256().parse::<ContentId>().unwrap(), id);
//! assert!(matches!("acme:router@^1.2".parse::<Spec>(), Ok(Spec::Package(..))));
//! ```

pub mod assets;
pub mod chunk;
pub mod component;
pub mod content_id;
pub mod envelope;
pub mod filter;
pub mod key;
pub mod log;
pub mod name;
pub mod pin;
pub mod record;
pub mod retention;
pub mod spec;
pub mod target;
pub mod wire;

pub use content_id::{ContentId, RecordId};
pub use envelope::SignedRecord;
pub use key::{Keypair, PublicKey};
pub use name::{Namespace, PackageName};
pub use record::NetworkId;
pub use spec::{Spec, Want};
