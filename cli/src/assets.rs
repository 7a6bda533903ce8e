//! Assets on disk: walking a directory into a tree at publish, and recreating a tree
//! under a directory at fetch.
//!
//! Publishing reads the directory completely and checks the tree before anything is
//! uploaded, so a refused directory changes nothing on the node. Links, devices, pipes
//! and sockets are refused (never followed); names must be UTF-8. Fetching checks the
//! tree again (whatever the node did), creates only directories and regular files, and
//! never writes through an existing link: every write lands inside the target
//! directory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ferry_protocol::assets::{AssetEntry, AssetError, AssetTree, MAX_ASSET_FILES, check_path};
use ferry_protocol::{ContentId, chunk};
use reqwest::Method;
use sha2::Digest;

use crate::client::Client;

/// One file found under the assets directory.
struct Found {
    rel: String,
    path: PathBuf,
    executable: bool,
}

#[cfg(unix)]
fn is_executable(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &fs::Metadata) -> bool {
    false
}

fn kind_of(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
        if t.is_fifo() {
            return "named pipe";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    let _ = t;
    "special file"
}

/// Every regular file below `root`, refusing links and special files.
fn walk(root: &Path) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let mut names = Vec::new();
        for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            names.push(e.file_name());
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let Some(name) = name.to_str() else {
                bail!(
                    "{} is not a UTF-8 name: asset paths must be UTF-8",
                    path.display()
                );
            };
            let rel = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            check_path(&rel).with_context(|| format!("{}", path.display()))?;
            let m = fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let t = m.file_type();
            if t.is_symlink() {
                return Err(AssetError::Link(path.display().to_string()).into());
            } else if t.is_dir() {
                stack.push((path, rel));
            } else if t.is_file() {
                out.push(Found {
                    rel,
                    path,
                    executable: is_executable(&m),
                });
                if out.len() > MAX_ASSET_FILES {
                    return Err(AssetError::TooManyFiles(out.len()).into());
                }
            } else {
                return Err(AssetError::NotRegular(path.display().to_string(), kind_of(&t)).into());
            }
        }
    }
    Ok(out)
}

/// The tree entry of a file, hashing it chunk by chunk (never whole in memory).
fn entry_of(f: &Found) -> Result<AssetEntry> {
    let mut file =
        fs::File::open(&f.path).with_context(|| format!("reading {}", f.path.display()))?;
    let mut whole = sha2::Sha256::new();
    let mut chunks = Vec::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; chunk::CHUNK_SIZE as usize];
    loop {
        let mut n = 0;
        while n < buf.len() {
            let got = file
                .read(&mut buf[n..])
                .with_context(|| format!("reading {}", f.path.display()))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
        chunks.extend_from_slice(&ferry_protocol::content_id::sha256(&buf[..n]));
        size += n as u64;
        if n < buf.len() {
            break;
        }
    }
    Ok(AssetEntry {
        path: f.rel.clone(),
        size,
        content: ContentId::from_digest(whole.finalize().into()),
        chunks: chunks.into(),
        executable: f.executable,
    })
}

/// Uploads `bytes` as a blob and returns its CID.
async fn upload(client: &Client, bytes: Vec<u8>) -> Result<String> {
    let v: serde_json::Value = client
        .send(client.request(Method::POST, "/v1/blobs").body(bytes))
        .await?
        .json()
        .await?;
    Ok(v["cid"].as_str().unwrap_or("").to_string())
}

/// Walks `root`, checks the tree, uploads every file and the tree, and returns the
/// tree's CID with its file count and total size.
pub async fn publish(client: &Client, root: &Path) -> Result<(String, u64, u64)> {
    let found = walk(root)?;
    let entries = found.iter().map(entry_of).collect::<Result<Vec<_>>>()?;
    let tree = AssetTree::new(entries).with_context(|| format!("assets in {}", root.display()))?;
    // Only now, with the whole tree checked, does anything reach the node.
    for f in &found {
        let entry = tree
            .entries
            .iter()
            .find(|x| x.path == f.rel)
            .context("a walked file is missing from its tree")?;
        if entry.size == 0 {
            continue;
        }
        let bytes = fs::read(&f.path).with_context(|| format!("reading {}", f.path.display()))?;
        if ContentId::of(&bytes) != entry.content {
            bail!(
                "{} changed while it was being published: try again",
                f.path.display()
            );
        }
        upload(client, bytes)
            .await
            .with_context(|| format!("uploading the asset {}", f.path.display()))?;
    }
    let cid = upload(client, tree.encode())
        .await
        .context("uploading the assets tree")?;
    Ok((cid, tree.files(), tree.bytes()))
}

/// Where `rel` goes below `root`: checks the path again and creates its directories,
/// refusing to pass through anything that is not a real directory (a link planted in
/// the target could otherwise redirect the write).
pub fn target(root: &Path, rel: &str) -> Result<PathBuf> {
    check_path(rel)?;
    let mut p = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    let (last, dirs) = parts.split_last().context("an empty asset path")?;
    for d in dirs {
        p.push(d);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                bail!(
                    "{} is a symbolic link: refusing to write asset `{rel}` through it",
                    p.display()
                )
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(
                "{} exists and is not a directory (asset `{rel}`)",
                p.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&p).with_context(|| format!("creating {}", p.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }
    p.push(last);
    if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
        bail!(
            "{} is a directory: cannot write asset `{rel}` there",
            p.display()
        );
    }
    Ok(p)
}

/// Fetches, checks and decodes the tree `cid` of a release that announced `files`
/// files and `bytes` bytes.
pub async fn load_tree(
    client: &Client,
    cid: &ContentId,
    files: u64,
    bytes: u64,
) -> Result<AssetTree> {
    let raw = client
        .send(client.request(Method::GET, &format!("/v1/blobs/{cid}")))
        .await?
        .bytes()
        .await
        .context("reading the assets tree from the node")?;
    anyhow::ensure!(
        ContentId::of(&raw) == *cid,
        "the node returned an assets tree that is not {cid}: refusing it"
    );
    let tree = AssetTree::decode(&raw).with_context(|| format!("assets tree {cid}"))?;
    let want = ferry_protocol::record::AssetsRef {
        tree: ferry_protocol::record::Attachment {
            content: *cid,
            size: raw.len() as u64,
            chunks: Default::default(),
        },
        files,
        bytes,
    };
    tree.check_against(&want)
        .with_context(|| format!("assets tree {cid}"))?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_refuses_escapes_even_from_an_unchecked_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("out");
        fs::create_dir(&root).expect("root");
        for bad in ["../x", "/etc/x", "a/../../x", "a\\..\\x", "a//b", "./a", ""] {
            assert!(target(&root, bad).is_err(), "{bad:?} must be refused");
        }
        assert!(!dir.path().join("x").exists());
        let ok = target(&root, "a/b/c.txt").expect("a nested path");
        assert_eq!(ok, root.join("a").join("b").join("c.txt"));
        assert!(root.join("a").join("b").is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn target_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("out");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&root).expect("root");
        fs::create_dir_all(&elsewhere).expect("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, root.join("a")).expect("link");
        let err = target(&root, "a/x").expect_err("through a link");
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn walk_refuses_links_and_finds_nested_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).expect("dirs");
        fs::write(root.join("a/b/c.txt"), b"c").expect("file");
        fs::write(root.join("top"), b"").expect("empty");
        let found = walk(root).expect("walk");
        let mut rels: Vec<&str> = found.iter().map(|f| f.rel.as_str()).collect();
        rels.sort();
        assert_eq!(rels, ["a/b/c.txt", "top"]);
        std::os::unix::fs::symlink("/etc/passwd", root.join("a/link")).expect("link");
        let err = walk(root).err().expect("a link is refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
