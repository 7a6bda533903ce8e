//! Small real components, one per scripted release, built in-process with
//! `wit-parser` and `wit-component` (no wasm toolchain needed).

use ferry_node::command::Draft;
use ferry_protocol::component::{self, ComponentError};
use ferry_protocol::record::Attachments;
use ferry_protocol::{ContentId, PackageName, chunk};

/// Why a component could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// wit-parser or wit-component refused (a bug in this module).
    #[error("building the component for {tag}: {why}")]
    Encode {
        /// The release tag.
        tag: String,
        /// What failed.
        why: String,
    },
    /// The protocol's own check refused the bytes.
    #[error("the component for {tag} fails the protocol check: {source}")]
    Check {
        /// The release tag.
        tag: String,
        /// The refusal.
        source: ComponentError,
    },
}

/// A component whose world exports one function named after `tag`, so every release
/// has its own bytes and its own CID.
pub fn build(tag: &str) -> Result<Vec<u8>, BuildError> {
    let fail = |why: String| BuildError::Encode {
        tag: tag.to_string(),
        why,
    };
    let wit = format!(
        "package sim:fixture;\n\
         world w {{\n  import get-{tag}: func() -> u32;\n  export run-{tag}: func(x: u32) -> u32;\n}}\n"
    );
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("fixture.wit", &wit)
        .map_err(|e| fail(e.to_string()))?;
    let world = resolve
        .select_world(&[pkg], Some("w"))
        .map_err(|e| fail(e.to_string()))?;
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .map_err(|e| fail(e.to_string()))?;
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .map_err(|e| fail(e.to_string()))?
        .encode()
        .map_err(|e| fail(e.to_string()))
}

/// A checked component, ready to become a release draft.
#[derive(Debug, Clone)]
pub struct Built {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their id.
    pub content: ContentId,
    checked: component::Checked,
}

impl Built {
    /// Builds and checks the component for `tag`.
    pub fn new(tag: &str) -> Result<Self, BuildError> {
        let bytes = build(tag)?;
        let checked = component::check(&bytes).map_err(|source| BuildError::Check {
            tag: tag.to_string(),
            source,
        })?;
        Ok(Self {
            content: ContentId::of(&bytes),
            bytes,
            checked,
        })
    }

    /// The release draft of these bytes as `package@version` (the blob must be stored
    /// on the publishing node first).
    pub fn draft(&self, package: PackageName, version: semver::Version) -> Draft {
        Draft {
            package,
            version,
            kind: self.checked.kind,
            content: self.content,
            size: self.bytes.len() as u64,
            chunks: chunk::digests(&self.bytes, chunk::CHUNK_SIZE),
            description: Some("a simulated release".into()),
            license: Some("Apache-2.0".into()),
            summary: self.checked.summary.clone(),
            attachments: Attachments::default(),
            extra_blobs: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_gives_a_distinct_valid_component() {
        let a = Built::new("r1").map_err(|e| e.to_string());
        let b = Built::new("r2").map_err(|e| e.to_string());
        let (a, b) = (a.as_ref().map(|x| x.content), b.as_ref().map(|x| x.content));
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        assert_ne!(a, b);
    }
}
