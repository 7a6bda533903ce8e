//! What a component is and what it needs, read from its bytes.
//!
//! The [`Summary`] is computed from the decoded WIT of a component (its root world, as
//! `wasm-tools component wit` prints it) or of a WIT package (its interfaces and
//! worlds), plus the metadata custom sections toolchains write (`wasm-metadata`). It
//! travels inside the signed release, so a node can index and show it before it has
//! the bytes; and since it is a pure function of the bytes, any node that downloads them
//! recomputes it and refuses a release whose summary does not match.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wit_parser::{Resolve, WorldId, WorldItem};

/// Longest metadata text kept in a summary (bytes); longer texts are cut at a char
/// boundary so a summary always fits in a record.
pub const MAX_TEXT: usize = 1024;
/// Most producer entries kept.
const MAX_PRODUCERS: usize = 64;

/// What a component imports, exports and needs, or what a WIT package defines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Imports of the root world: `ns:pkg/iface@ver` for named interfaces, the bare
    /// name for functions and inline interfaces. In declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
    /// Exports of the root world, named the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<String>,
    /// For a WIT package: its own name, `ns:pkg@ver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wit_package: Option<String>,
    /// For a WIT package: its interfaces, `ns:pkg/iface@ver`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// For a WIT package: its worlds, `ns:pkg/world@ver`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worlds: Vec<String>,
    /// What the imports ask of a host, grouped for people.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    /// Metadata sections.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// One kind of host access a component asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// A name for people: "files", "network sockets", "outgoing HTTP", ...
    pub name: String,
    /// The imported interfaces that ask for it.
    pub interfaces: Vec<String>,
}

/// The metadata custom sections of a component (root first, then nested modules for
/// producers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `component-name` / `name` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `authors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authors: Option<String>,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `licenses` (an SPDX expression, unchecked here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licenses: Option<String>,
    /// `source` (repository URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `homepage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// `revision` (source control revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `version` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `producers`, merged over the component and its nested modules: field
    /// (`language`, `processed-by`, `sdk`) → `name version` entries, sorted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub producers: BTreeMap<String, Vec<String>>,
}

impl Metadata {
    /// Whether no section was found.
    pub fn is_empty(&self) -> bool {
        *self == Metadata::default()
    }
}

/// Says how an announced summary differs from the one computed from the bytes, in one
/// line, or `None` when they are equal.
pub fn difference(announced: &Summary, computed: &Summary) -> Option<String> {
    fn list(v: &[String]) -> String {
        if v.is_empty() {
            "nothing".into()
        } else {
            v.join(", ")
        }
    }
    let pairs: [(&str, &[String], &[String]); 4] = [
        ("imports", &announced.imports, &computed.imports),
        ("exports", &announced.exports, &computed.exports),
        ("interfaces", &announced.interfaces, &computed.interfaces),
        ("worlds", &announced.worlds, &computed.worlds),
    ];
    for (what, a, c) in pairs {
        if a != c {
            return Some(format!(
                "it announces {what} [{}] but the bytes have [{}]",
                list(a),
                list(c)
            ));
        }
    }
    if announced.wit_package != computed.wit_package {
        return Some("it announces another WIT package name than the bytes hold".into());
    }
    if announced.capabilities != computed.capabilities {
        return Some("it announces other capabilities than its imports need".into());
    }
    if announced.metadata != computed.metadata {
        return Some("it announces other metadata than the bytes carry".into());
    }
    None
}

/// The imports and exports of world `world` of the binary WIT package `bytes`, named as
/// component summaries name them, for [`crate::target::check_target`].
pub fn world_shape(bytes: &[u8], world: &str) -> Result<crate::target::Shape, String> {
    let decoded = std::panic::catch_unwind(|| wit_component::decode(bytes))
        .map_err(|_| "its WIT could not be decoded".to_string())?
        .map_err(|e| format!("not a WIT package: {e:#}"))?;
    let wit_component::DecodedWasm::WitPackage(resolve, pkg) = decoded else {
        return Err("a component, not a WIT package: worlds are published as WIT packages".into());
    };
    let p = resolve
        .packages
        .get(pkg)
        .ok_or_else(|| "the WIT package has no package entry".to_string())?;
    let id = p.worlds.get(world).copied().ok_or_else(|| {
        let known: Vec<&str> = p.worlds.keys().map(String::as_str).collect();
        format!(
            "{} has no world `{world}` (it has: {})",
            p.name,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    })?;
    let w = resolve
        .worlds
        .get(id)
        .ok_or_else(|| "dangling world id".to_string())?;
    Ok(crate::target::Shape {
        imports: items(&resolve, w.imports.iter()),
        exports: items(&resolve, w.exports.iter()),
    })
}

/// Builds the summary of a decoded component (`world` is its root world).
pub(crate) fn of_component(bytes: &[u8], resolve: &Resolve, world: WorldId) -> Summary {
    let mut s = Summary {
        metadata: metadata(bytes),
        ..Summary::default()
    };
    if let Some(w) = resolve.worlds.get(world) {
        s.imports = items(resolve, w.imports.iter());
        s.exports = items(resolve, w.exports.iter());
    }
    s.capabilities = capabilities(&s.imports);
    s
}

/// Builds the summary of a decoded WIT package.
pub(crate) fn of_wit_package(
    bytes: &[u8],
    resolve: &Resolve,
    package: wit_parser::PackageId,
) -> Summary {
    let mut s = Summary {
        metadata: metadata(bytes),
        ..Summary::default()
    };
    if let Some(p) = resolve.packages.get(package) {
        s.wit_package = Some(p.name.to_string());
        s.interfaces = p
            .interfaces
            .values()
            .filter_map(|id| resolve.id_of(*id))
            .collect();
        s.worlds = p.worlds.keys().map(|w| versioned(&p.name, w)).collect();
    }
    s
}

/// `ns:pkg/item@ver` for an item of package `pkg`.
fn versioned(pkg: &wit_parser::PackageName, item: &str) -> String {
    match &pkg.version {
        Some(v) => format!("{}:{}/{item}@{v}", pkg.namespace, pkg.name),
        None => format!("{}:{}/{item}", pkg.namespace, pkg.name),
    }
}

/// Names of the interface and function items of a world; type items are not imports
/// a host has to provide, so they are left out.
fn items<'a>(
    resolve: &Resolve,
    it: impl Iterator<Item = (&'a wit_parser::WorldKey, &'a WorldItem)>,
) -> Vec<String> {
    it.filter(|(_, item)| !matches!(item, WorldItem::Type { .. }))
        .map(|(key, _)| resolve.name_world_key(key))
        .collect()
}

/// The capability group of an imported interface, if it is one a host grants.
fn capability_of(import: &str) -> Option<&'static str> {
    let (base, _) = crate::target::split_versioned(import);
    let (pkg, iface) = base.split_once('/')?;
    Some(match (pkg, iface) {
        ("wasi:filesystem", _) => "files",
        ("wasi:sockets", "ip-name-lookup") => "name lookup (DNS)",
        ("wasi:sockets", _) => "network sockets",
        ("wasi:http", "outgoing-handler" | "handler" | "client") => "outgoing HTTP",
        ("wasi:clocks", _) => "clocks",
        ("wasi:random", _) => "randomness",
        ("wasi:cli", "environment") => "environment and arguments",
        ("wasi:cli", "exit") => "process exit",
        ("wasi:cli", i) if i == "stdin" || i == "stdout" || i == "stderr" => "standard I/O",
        ("wasi:cli", i) if i.starts_with("terminal-") => "terminal",
        ("wasi:keyvalue", _) => "key-value storage",
        ("wasi:blobstore", _) => "blob storage",
        ("wasi:config", _) | ("wasi:cli", "config") => "runtime configuration",
        ("wasi:logging", _) => "logging",
        ("wasi:messaging", _) => "messaging",
        ("wasi:nn", _) => "machine learning inference",
        ("wasi:tls", _) => "TLS",
        _ => return None,
    })
}

/// Groups imports into capabilities, in a fixed order (by name).
pub fn capabilities(imports: &[String]) -> Vec<Capability> {
    let mut groups: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for i in imports {
        if let Some(c) = capability_of(i) {
            groups.entry(c).or_default().push(i.clone());
        }
    }
    groups
        .into_iter()
        .map(|(name, interfaces)| Capability {
            name: name.to_string(),
            interfaces,
        })
        .collect()
}

/// Cuts `s` to at most [`MAX_TEXT`] bytes at a char boundary.
fn clip(s: String) -> String {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Reads the metadata sections; a component whose metadata does not parse simply has
/// none (the bytes were validated already).
fn metadata(bytes: &[u8]) -> Metadata {
    let Ok(payload) = wasm_metadata::Payload::from_binary(bytes) else {
        return Metadata::default();
    };
    let m = payload.metadata();
    let text = |v: Option<String>| v.map(clip).filter(|t| !t.trim().is_empty());
    let mut out = Metadata {
        name: text(m.name.clone()),
        authors: text(m.authors.as_ref().map(|a| a.to_string())),
        description: text(m.description.as_ref().map(|a| a.to_string())),
        licenses: text(m.licenses.as_ref().map(|a| a.to_string())),
        source: text(m.source.as_ref().map(|a| a.to_string())),
        homepage: text(m.homepage.as_ref().map(|a| a.to_string())),
        revision: text(m.revision.as_ref().map(|a| a.to_string())),
        version: text(m.version.as_ref().map(|a| a.to_string())),
        producers: BTreeMap::new(),
    };
    let mut producers: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    collect_producers(&payload, &mut producers);
    let mut kept = 0;
    for (field, entries) in producers {
        let entries: Vec<String> = entries
            .into_iter()
            .take(MAX_PRODUCERS.saturating_sub(kept))
            .collect();
        kept += entries.len();
        if !entries.is_empty() {
            out.producers.insert(clip(field), entries);
        }
    }
    out
}

fn collect_producers(
    payload: &wasm_metadata::Payload,
    out: &mut BTreeMap<String, std::collections::BTreeSet<String>>,
) {
    if let Some(p) = &payload.metadata().producers {
        for (field, values) in p.iter() {
            for (name, version) in values.iter() {
                let entry = if version.is_empty() {
                    name.clone()
                } else {
                    format!("{name} {version}")
                };
                out.entry(field.clone()).or_default().insert(clip(entry));
            }
        }
    }
    if let wasm_metadata::Payload::Component { children, .. } = payload {
        for c in children {
            collect_producers(c, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_group_wasi_imports_and_skip_plumbing() {
        let imports: Vec<String> = [
            "wasi:io/streams@0.2.0",
            "wasi:cli/stdout@0.2.0",
            "wasi:cli/environment@0.2.0",
            "wasi:filesystem/types@0.2.0",
            "wasi:filesystem/preopens@0.2.0",
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:http/types@0.2.0",
            "wasi:sockets/tcp@0.2.0",
            "local:app/thing",
            "run",
        ]
        .map(String::from)
        .to_vec();
        let caps = capabilities(&imports);
        let names: Vec<&str> = caps.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "environment and arguments",
                "files",
                "network sockets",
                "outgoing HTTP",
                "standard I/O"
            ]
        );
        let files = caps.iter().find(|c| c.name == "files").unwrap();
        assert_eq!(files.interfaces.len(), 2);
    }

    #[test]
    fn difference_names_the_field() {
        let a = Summary {
            exports: vec!["wasi:http/incoming-handler@0.2.0".into()],
            ..Summary::default()
        };
        let c = Summary::default();
        assert_eq!(difference(&a, &a.clone()), None);
        let d = difference(&a, &c).unwrap();
        assert!(
            d.contains("exports [wasi:http/incoming-handler@0.2.0]"),
            "{d}"
        );
        assert!(d.contains("[nothing]"), "{d}");
    }

    #[test]
    fn clip_keeps_char_boundaries() {
        let s = "é".repeat(MAX_TEXT);
        let c = clip(s);
        assert!(c.len() <= MAX_TEXT);
        assert!(c.chars().all(|ch| ch == 'é'));
    }
}
