//! Static assets: a directory tree of files published with a release.
//!
//! A tree lists every regular file under the published directory: its path relative to
//! the root, size, content id, chunk digests and executable bit. Each file is a blob of
//! its own, downloaded and verified chunk by chunk like any content. The tree itself is
//! a CBOR blob, and the release names it in [`crate::record::Attachments::assets`]
//! (its id, size and chunk digests, plus the file count and total size), so the release
//! signature covers the tree and, through the tree's content ids, every byte of every
//! file.
//!
//! Why a blob named by the signed release rather than a record of its own: records
//! travel by gossip, whose messages are capped at 64 KiB, while a tree of thousands of
//! files with their chunk digests runs to megabytes; and only a node that wants the
//! assets needs the tree, so it should not ride along with every announcement. Binding
//! its content id into the release is as strong as signing the tree itself.
//!
//! A tree is untrusted input wherever it comes from: [`AssetTree::decode`] and
//! [`AssetTree::check`] refuse any path that could leave the directory it is written
//! to (`..`, absolute paths, empty components, backslashes, drive letters, NUL and
//! control characters), duplicates, files that are also directories, names that differ
//! only in case, and trees over the size bounds. There is no entry kind for links or
//! devices: a tree can only describe regular files, so writing it can only create
//! directories and regular files below the root.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::chunk;
use crate::content_id::ContentId;
use crate::record::AssetsRef;

/// Tree format written by this version.
pub const ASSETS_FORMAT: u32 = 1;
/// Most files in one tree.
pub const MAX_ASSET_FILES: usize = 10_000;
/// Largest total size of the files of one tree (4 GiB).
pub const MAX_ASSETS_BYTES: u64 = 4 << 30;
/// Largest single asset file: the largest blob a release may name.
pub const MAX_ASSET_FILE_BYTES: u64 = crate::log::MAX_BLOB_BYTES;
/// Longest path, in bytes.
pub const MAX_ASSET_PATH_BYTES: usize = 1024;
/// Longest path component, in bytes (the usual file-name limit of file systems).
pub const MAX_ASSET_NAME_BYTES: usize = 255;
/// Largest encoded tree (16 MiB): 10,000 long paths and their digests fit.
pub const MAX_TREE_BYTES: u64 = 16 << 20;

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetEntry {
    /// Path relative to the root, `/`-separated, normalized (see [`check_path`]).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The file's blob.
    pub content: ContentId,
    /// SHA-256 of every chunk ([`chunk::CHUNK_SIZE`]), concatenated.
    pub chunks: ByteBuf,
    /// Whether the file is executable.
    #[serde(default)]
    pub executable: bool,
}

impl AssetEntry {
    /// The entry for a file at `path` holding `bytes`.
    pub fn of(path: impl Into<String>, bytes: &[u8], executable: bool) -> Self {
        Self {
            path: path.into(),
            size: bytes.len() as u64,
            content: ContentId::of(bytes),
            chunks: ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
            executable,
        }
    }
}

/// A directory tree of asset files, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetTree {
    /// Format version ([`ASSETS_FORMAT`]).
    pub format: u32,
    /// The files, sorted by path (bytewise), no duplicates.
    pub entries: Vec<AssetEntry>,
}

/// Why a path or a tree is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// The path is empty.
    #[error("an asset path is empty")]
    EmptyPath,
    /// The path starts at the file system root.
    #[error("asset path `{0}` is absolute: paths must be relative to the assets root")]
    Absolute(String),
    /// A `..` component would climb out of the root.
    #[error("asset path `{0}` escapes the assets root with `..`")]
    ParentDir(String),
    /// A `.` component: not normalized.
    #[error("asset path `{0}` has a `.` component: paths must be normalized")]
    CurrentDir(String),
    /// `a//b`, or a trailing `/`.
    #[error("asset path `{0}` has an empty component")]
    EmptyComponent(String),
    /// Windows would read a backslash as a separator.
    #[error("asset path `{0}` contains a backslash: use `/` as the separator")]
    Backslash(String),
    /// Windows reads `C:` as a drive and `name:stream` as a data stream.
    #[error("asset path `{0}` contains `:`, which names drives and streams on Windows")]
    Colon(String),
    /// NUL or another control character.
    #[error("asset path {0:?} contains a NUL or control character")]
    ControlChar(String),
    /// Over [`MAX_ASSET_PATH_BYTES`] or a component over [`MAX_ASSET_NAME_BYTES`].
    #[error(
        "asset path `{0}` is too long (at most {MAX_ASSET_PATH_BYTES} bytes, {MAX_ASSET_NAME_BYTES} per component)"
    )]
    TooLong(String),
    /// A symbolic link: a tree holds regular files only.
    #[error("{0} is a symbolic link: assets must be regular files and directories")]
    Link(String),
    /// A device, socket or pipe.
    #[error("{0} is a {1}: assets must be regular files and directories")]
    NotRegular(String, &'static str),
    /// Entries out of order.
    #[error("asset tree is not sorted: `{0}` comes after `{1}`")]
    Unsorted(String, String),
    /// The same path twice.
    #[error("asset path `{0}` appears twice")]
    Duplicate(String),
    /// A file whose path is also a directory of another entry.
    #[error("asset path `{0}` is a file and also a directory of `{1}`")]
    FileIsDirectory(String, String),
    /// Two paths that one file on a case-insensitive file system would hold.
    #[error("asset paths `{0}` and `{1}` differ only in case")]
    CaseClash(String, String),
    /// More than [`MAX_ASSET_FILES`] files.
    #[error("asset tree has {0} files, over the limit of {MAX_ASSET_FILES}")]
    TooManyFiles(usize),
    /// Files over [`MAX_ASSETS_BYTES`] in total, or one over [`MAX_ASSET_FILE_BYTES`].
    #[error(
        "assets hold {0} bytes, over the limit ({MAX_ASSETS_BYTES} in all, {MAX_ASSET_FILE_BYTES} per file)"
    )]
    TooLarge(u64),
    /// Chunk digests that do not fit the entry's size and content id.
    #[error("asset `{0}`: its chunk digests do not fit its size and content id")]
    BadChunks(String),
    /// The encoded tree is over [`MAX_TREE_BYTES`].
    #[error("asset tree of {0} bytes is over the {MAX_TREE_BYTES}-byte limit")]
    TreeTooLarge(u64),
    /// A format this version does not know.
    #[error(
        "asset tree format {0} is not supported (this ferry reads {ASSETS_FORMAT}): upgrade ferry"
    )]
    Format(u32),
    /// Not CBOR of a tree.
    #[error("asset tree does not decode: {0}")]
    Decode(String),
    /// The tree contradicts the counts its release signed.
    #[error(
        "asset tree holds {files} files and {bytes} bytes, but its release says {want_files} files and {want_bytes} bytes"
    )]
    Summary {
        /// Files in the tree.
        files: u64,
        /// Bytes in the tree.
        bytes: u64,
        /// Files the release announces.
        want_files: u64,
        /// Bytes the release announces.
        want_bytes: u64,
    },
}

/// Checks that `path` is a normalized relative path that stays below its root on every
/// common file system: `/`-separated components, none empty, `.` or `..`, no
/// backslash, `:`, NUL or control character, within the length limits.
pub fn check_path(path: &str) -> Result<(), AssetError> {
    let owned = || path.to_string();
    if path.is_empty() {
        return Err(AssetError::EmptyPath);
    }
    if path.chars().any(char::is_control) {
        return Err(AssetError::ControlChar(owned()));
    }
    if path.starts_with('/') {
        return Err(AssetError::Absolute(owned()));
    }
    if path.contains('\\') {
        return Err(AssetError::Backslash(owned()));
    }
    if path.contains(':') {
        return Err(AssetError::Colon(owned()));
    }
    if path.len() > MAX_ASSET_PATH_BYTES {
        return Err(AssetError::TooLong(owned()));
    }
    for c in path.split('/') {
        match c {
            "" => return Err(AssetError::EmptyComponent(owned())),
            "." => return Err(AssetError::CurrentDir(owned())),
            ".." => return Err(AssetError::ParentDir(owned())),
            c if c.len() > MAX_ASSET_NAME_BYTES => return Err(AssetError::TooLong(owned())),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that an entry's chunk digests fit its size and content id, as a release's do.
fn check_chunks(e: &AssetEntry) -> Result<(), AssetError> {
    let want = chunk::count(e.size, chunk::CHUNK_SIZE).saturating_mul(32);
    let single = e.size <= u64::from(chunk::CHUNK_SIZE);
    let fits = e.chunks.len() as u64 == want
        && match e.size {
            // The empty file has no chunks; its id is the id of no bytes.
            0 => e.content == ContentId::of(&[]),
            _ if single => chunk::digest_at(&e.chunks, 0) == Some(*e.content.digest()),
            _ => true,
        };
    if fits {
        Ok(())
    } else {
        Err(AssetError::BadChunks(e.path.clone()))
    }
}

impl AssetTree {
    /// A checked tree of `entries`, sorted by path.
    pub fn new(mut entries: Vec<AssetEntry>) -> Result<Self, AssetError> {
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let tree = Self {
            format: ASSETS_FORMAT,
            entries,
        };
        tree.check()?;
        Ok(tree)
    }

    /// Number of files.
    pub fn files(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Total size of the files.
    pub fn bytes(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |acc, e| acc.saturating_add(e.size))
    }

    /// Checks every rule of a tree (see the module documentation).
    pub fn check(&self) -> Result<(), AssetError> {
        if self.format != ASSETS_FORMAT {
            return Err(AssetError::Format(self.format));
        }
        if self.entries.len() > MAX_ASSET_FILES {
            return Err(AssetError::TooManyFiles(self.entries.len()));
        }
        let mut total = 0u64;
        let mut prev: Option<&str> = None;
        // Every directory the entries imply, with one entry below it (for messages).
        let mut dirs: BTreeMap<&str, &str> = BTreeMap::new();
        let mut folded = BTreeMap::new();
        for e in &self.entries {
            check_path(&e.path)?;
            if let Some(p) = prev {
                match p.as_bytes().cmp(e.path.as_bytes()) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => return Err(AssetError::Duplicate(e.path.clone())),
                    std::cmp::Ordering::Greater => {
                        return Err(AssetError::Unsorted(e.path.clone(), p.to_string()));
                    }
                }
            }
            prev = Some(&e.path);
            if e.size > MAX_ASSET_FILE_BYTES {
                return Err(AssetError::TooLarge(e.size));
            }
            total = total.saturating_add(e.size);
            check_chunks(e)?;
            let mut at = 0;
            while let Some(i) = e.path[at..].find('/') {
                dirs.entry(&e.path[..at + i]).or_insert(&e.path);
                at += i + 1;
            }
            if let Some(other) = folded.insert(e.path.to_lowercase(), &e.path) {
                return Err(AssetError::CaseClash(other.clone(), e.path.clone()));
            }
        }
        if total > MAX_ASSETS_BYTES {
            return Err(AssetError::TooLarge(total));
        }
        // A file may not also be a directory that holds another entry.
        for e in &self.entries {
            if let Some(child) = dirs.get(e.path.as_str()) {
                return Err(AssetError::FileIsDirectory(
                    e.path.clone(),
                    (*child).to_string(),
                ));
            }
        }
        // Directories that differ only in case would merge on such file systems too.
        let mut folded_dirs = BTreeMap::new();
        for d in dirs.keys() {
            if let Some(other) = folded_dirs.insert(d.to_lowercase(), *d) {
                return Err(AssetError::CaseClash(other.to_string(), d.to_string()));
            }
        }
        Ok(())
    }

    /// Checks the tree against the file count and total size its release signed.
    pub fn check_against(&self, r: &AssetsRef) -> Result<(), AssetError> {
        if self.files() != r.files || self.bytes() != r.bytes {
            return Err(AssetError::Summary {
                files: self.files(),
                bytes: self.bytes(),
                want_files: r.files,
                want_bytes: r.bytes,
            });
        }
        Ok(())
    }

    /// Deterministic CBOR of the tree (entries are kept in their order; a tree made by
    /// [`AssetTree::new`] is sorted).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes and checks a tree from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, AssetError> {
        if bytes.len() as u64 > MAX_TREE_BYTES {
            return Err(AssetError::TreeTooLarge(bytes.len() as u64));
        }
        let tree: AssetTree =
            ciborium::from_reader(bytes).map_err(|e| AssetError::Decode(e.to_string()))?;
        tree.check()?;
        Ok(tree)
    }
}

#[cfg(test)]
mod tests;
