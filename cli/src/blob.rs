//! Saving a blob from the node into a file, verified before it lands.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ferry_protocol::ContentId;
use futures::StreamExt;
use reqwest::Method;
use sha2::Digest;

use crate::client::Client;

/// Streams blob `cid` (`size` bytes) from the node into `out`: into a temp file beside
/// it, hashing as it goes, renamed over `out` only if the bytes are the ones `cid`
/// names. `executable` sets the file's mode on Unix (0755, else 0644) when given.
pub async fn save(
    client: &Client,
    cid: &ContentId,
    size: u64,
    out: &Path,
    executable: Option<bool>,
    mut progress: impl FnMut(u64),
) -> Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.ferry-partial",
        out.file_name().and_then(|f| f.to_str()).unwrap_or("fetch")
    ));
    // The empty file is not stored as a blob: its id alone says what it holds.
    let resp = if size == 0 {
        None
    } else {
        Some(
            client
                .send(client.request(Method::GET, &format!("/v1/blobs/{cid}")))
                .await?,
        )
    };
    // Never through a link left at the temp path: create it afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut written = 0u64;
    let mut stream = resp.map(|r| r.bytes_stream());
    let res: Result<()> = async {
        while let Some(chunk) = match stream.as_mut() {
            Some(s) => s.next().await,
            None => None,
        } {
            let chunk = chunk.with_context(|| format!("reading blob {cid} from the node"))?;
            hasher.update(&chunk);
            file.write_all(&chunk)
                .with_context(|| format!("writing {}", tmp.display()))?;
            written += chunk.len() as u64;
            progress(written.min(size));
        }
        file.sync_all()
            .with_context(|| format!("writing {}", tmp.display()))?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != *cid.digest() || written != size {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "the bytes received do not match {cid}: nothing was written to {}",
            out.display()
        );
    }
    #[cfg(unix)]
    if let Some(x) = executable {
        use std::os::unix::fs::PermissionsExt;
        let mode = if x { 0o755 } else { 0o644 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    std::fs::rename(&tmp, out).with_context(|| format!("moving the file to {}", out.display()))?;
    Ok(())
}
