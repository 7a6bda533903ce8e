//! Deciding whether a file's bytes may be published as a Ferry package.
//!
//! Ferry only distributes two kinds of packages: WebAssembly *components* and
//! binary-encoded *WIT packages*. Publishing runs [`check`] on the bytes before
//! anything is stored, hashed into a record or announced to the network, so a
//! peer never has to carry (or a consumer download) something that no component
//! toolchain can use: a plain core module, a file in the obsolete pre-standard
//! component encoding, a truncated upload, or plain garbage.
//!
//! The check is pure and deterministic (no I/O, no clock): the same bytes always
//! give the same answer, so every node can re-run it on content it receives.
//! It proceeds in order:
//!
//! 1. size: empty files and files over [`MAX_PACKAGE_BYTES`] are refused;
//! 2. header: the `\0asm` magic and the 4-byte version word, which tells a core
//!    module (`01 00 00 00`) from a component (`0d 00 01 00`); core modules are
//!    refused straight away (with a hint when they embed WIT, which means the
//!    `wasm-tools component new` step is missing), any other version is refused
//!    as unsupported;
//! 3. full validation with `wasmparser` and every proposal enabled;
//! 4. classification with `wit_component::decode`: a WIT package (only component
//!    type exports) or a component. A component whose WIT cannot be recovered is
//!    refused too, since Ferry shows and indexes that WIT.
//!
//! Every error message is a single lowercase line saying what is wrong and what
//! to do, fit to be shown as is by a command-line tool.

use wasmparser::{Parser, Payload, Validator, WasmFeatures};
use wit_component::DecodedWasm;

pub mod analysis;
pub use analysis::Summary;

/// The largest file, in bytes, that [`check`] accepts (1 GiB).
pub const MAX_PACKAGE_BYTES: u64 = 1 << 30;

/// The four magic bytes every WebAssembly binary starts with.
const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// Version word of a core wasm module: `01 00 00 00`.
const CORE_MODULE_VERSION: u32 = 0x0000_0001;
/// Version word of a component: version `0x0d`, layer 1 (`0d 00 01 00`).
const COMPONENT_VERSION: u32 = 0x0001_000d;
/// Prefix of the custom sections in which toolchains embed a module's WIT.
const COMPONENT_TYPE_SECTION_PREFIX: &str = "component-type";

/// What kind of package a checked file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    /// A WebAssembly component (something that can be instantiated).
    Component,
    /// A binary-encoded WIT package (interfaces and worlds only, no code).
    Wit,
}

/// Result of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Whether the file is a component or a WIT package.
    pub kind: PackageKind,
    /// For a binary-encoded WIT package: its own package name as written in it,
    /// e.g. "wasi:http@0.2.0" (namespace:name[@version]). None for components.
    pub wit_package: Option<String>,
    /// Imports, exports, capabilities and metadata, as signed into the release.
    pub summary: Summary,
}

/// Why bytes are not a publishable package. Messages are lowercase one-liners
/// that say what is wrong and what to do.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ComponentError {
    /// The file has no bytes at all.
    #[error("the file is empty: expected a WebAssembly component or WIT package")]
    Empty,
    /// The file does not start with the wasm magic bytes.
    #[error("not WebAssembly: the file does not start with the wasm magic bytes (\\0asm)")]
    NotWasm,
    /// The header's version word is neither a core module's nor a current
    /// component's (e.g. the obsolete 0x0c component encoding, or garbage).
    #[error("unsupported wasm binary version {version:#x}: re-encode it with a current wasm-tools")]
    UnknownVersion {
        /// The 4-byte little-endian word after the magic bytes.
        version: u32,
    },
    /// A core module carrying a `component-type*` custom section: it was meant
    /// to become a component, but the componentization step was skipped.
    #[error(
        "a core wasm module, not a component: wrap it with `wasm-tools component new` (it embeds WIT, so an adapter build is likely missing)"
    )]
    CoreModuleWithWit,
    /// A plain core module.
    #[error(
        "a core wasm module, not a component: build it as a component (e.g. `wasm-tools component new`)"
    )]
    CoreModule,
    /// A component header, but the binary does not validate or its WIT cannot
    /// be decoded. Holds the one-line error text (with its offset when known).
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The file is larger than [`MAX_PACKAGE_BYTES`].
    #[error("file is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Size of the file in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
}

/// Check bytes: size, magic/header, full validation with wasmparser
/// (`WasmFeatures::all()`), then classify with `wit_component::decode`: a WIT
/// package (`DecodedWasm::WitPackage`) vs a component.
///
/// Never panics (a panic inside the decoding libraries is caught and reported
/// as [`ComponentError::Invalid`]). Core modules are refused from their header
/// alone (they are not validated); components must validate and decode.
pub fn check(bytes: &[u8]) -> Result<Checked, ComponentError> {
    check_with_limit(bytes, MAX_PACKAGE_BYTES)
}

/// [`check`] with the size limit as a parameter (so tests need not allocate 1 GiB).
fn check_with_limit(bytes: &[u8], max: u64) -> Result<Checked, ComponentError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size == 0 {
        return Err(ComponentError::Empty);
    }
    if size > max {
        return Err(ComponentError::TooLarge { size, max });
    }

    match header_version(bytes)? {
        COMPONENT_VERSION => {}
        CORE_MODULE_VERSION => {
            return Err(if embeds_wit(bytes) {
                ComponentError::CoreModuleWithWit
            } else {
                ComponentError::CoreModule
            });
        }
        version => return Err(ComponentError::UnknownVersion { version }),
    }

    // wasmparser is fuzzed hard, but wit-parser's decoder still has
    // `unreachable!()`s that some valid components reach (e.g. one importing a
    // function *type*). A publish check runs on untrusted bytes, so a panic in
    // either library is caught and reported as an invalid component.
    std::panic::catch_unwind(|| validate_and_classify(bytes)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(ComponentError::Invalid(first_line(&format!(
            "its WIT could not be decoded (the decoder panicked: {reason})"
        ))))
    })
}

/// Steps 3 and 4: full validation, then WIT decoding to tell a WIT package
/// from a component. `bytes` has a component header.
fn validate_and_classify(bytes: &[u8]) -> Result<Checked, ComponentError> {
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| ComponentError::Invalid(first_line(&e.to_string())))?;

    match wit_component::decode(bytes) {
        Ok(DecodedWasm::WitPackage(resolve, id)) => {
            let name = resolve
                .packages
                .get(id)
                .map(|package| package.name.to_string())
                .ok_or_else(|| {
                    ComponentError::Invalid("decoded WIT package has no package entry".into())
                })?;
            Ok(Checked {
                kind: PackageKind::Wit,
                wit_package: Some(name),
                summary: analysis::of_wit_package(bytes, &resolve, id),
            })
        }
        Ok(DecodedWasm::Component(resolve, world)) => Ok(Checked {
            kind: PackageKind::Component,
            wit_package: None,
            summary: analysis::of_component(bytes, &resolve, world),
        }),
        // `{:#}` prints the whole context chain ("outer: inner: ...") on one line.
        Err(e) => Err(ComponentError::Invalid(first_line(&format!("{e:#}")))),
    }
}

/// Reads the 8-byte header and returns its version word.
fn header_version(bytes: &[u8]) -> Result<u32, ComponentError> {
    if !bytes.starts_with(&WASM_MAGIC) {
        return Err(ComponentError::NotWasm);
    }
    match bytes
        .get(4..8)
        .and_then(|word| <[u8; 4]>::try_from(word).ok())
    {
        Some(word) => Ok(u32::from_le_bytes(word)),
        None => Err(ComponentError::Invalid(format!(
            "the file ends inside the 8-byte wasm header ({} bytes)",
            bytes.len()
        ))),
    }
}

/// Whether a core module has a custom section named `component-type*` (the
/// WIT that `wasm-tools component new` turns into a component). Stops at the
/// first parse error: a broken module is refused as a core module either way.
fn embeds_wit(bytes: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::CustomSection(section))
                if section.name().starts_with(COMPONENT_TYPE_SECTION_PREFIX) =>
            {
                return true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// The first line of an error text, trimmed, so messages stay one line.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests;

/// The license a component's own `licenses` metadata section claims, if it has one
/// (as written by `wasm-tools metadata add --licenses` or toolchains that embed it).
///
/// The text is returned even when it is not valid SPDX: it is still what the publisher
/// declared, and a network that requires SPDX must refuse the release naming that text
/// rather than claim the release has no license at all. (`wasm-metadata` refuses such a
/// section, and with it the whole metadata payload, so the section is then read
/// directly.)
pub fn metadata_license(bytes: &[u8]) -> Option<String> {
    let license = match wasm_metadata::Payload::from_binary(bytes) {
        Ok(payload) => payload.metadata().licenses.as_ref().map(|l| l.to_string()),
        Err(_) => top_level_section(bytes, "licenses")
            .map(|data| String::from_utf8_lossy(data).into_owned()),
    };
    license.filter(|l| !l.trim().is_empty())
}

/// The payload of the custom section `name` of the outermost module or component
/// (not of one nested inside it).
fn top_level_section<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(c) if depth == 1 && c.name() == name => {
                return Some(c.data());
            }
            _ => {}
        }
    }
    None
}
