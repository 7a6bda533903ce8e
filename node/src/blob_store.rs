//! Blobs on disk, named by content id; only verified bytes are ever served.
//!
//! A complete blob lives at `blobs/<cid>`. It gets there only by rename, after its
//! bytes were hashed against the id and fsynced, so a crash at any moment leaves either
//! no blob or a whole verified one. Downloads write into `blobs/partial/<cid>`; each
//! chunk is checked against the digest the signed release lists before it is written,
//! and a restarted download re-hashes the partial file to find the chunks it already
//! has, so at most the chunk that was being written is fetched again.
//!
//! Stored bytes are checked again whenever they leave the store
//! ([`BlobStore::verify`], [`BlobStore::read_verified_chunk`]): every blob has its
//! chunk digests beside it in `blobs/chunks/<cid>`, each chunk served is hashed against
//! its digest first, and a blob whose bytes no longer match (a disk error, a hand edit)
//! is moved to `blobs/quarantine/` and never served again.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_protocol::chunk;
use ferry_protocol::content_id::ContentId;

mod partial;
mod verify;

pub use partial::{ChunkWriter, Partial};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// File system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Bytes do not hash to what was expected.
    #[error("blob {0}: bytes do not match the content id")]
    Mismatch(ContentId),
    /// A chunk does not match the release's digest.
    #[error("blob {content}: chunk {index} does not match its digest")]
    BadChunk {
        /// Blob.
        content: ContentId,
        /// Chunk index.
        index: u64,
    },
    /// Chunk index or length out of range.
    #[error("blob {content}: chunk {index} is out of range")]
    OutOfRange {
        /// Blob.
        content: ContentId,
        /// Chunk index.
        index: u64,
    },
    /// A file is not the size its release announces.
    #[error("blob {content}: file is {} than the {expected} bytes its release announces", if *larger { "larger" } else { "smaller" })]
    WrongSize {
        /// Blob.
        content: ContentId,
        /// Size the release announces.
        expected: u64,
        /// Whether the file is larger (else smaller).
        larger: bool,
    },
    /// No complete blob with that id.
    #[error("blob {0} is not stored here")]
    NotFound(ContentId),
    /// A stored blob's bytes no longer match its id.
    #[error("stored blob {0} no longer matches its content id (disk corruption?)")]
    Corrupt(ContentId),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The blob store under one directory.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    tmp_counter: AtomicU64,
}

impl BlobStore {
    /// Opens the store, creating its folders and clearing leftovers of interrupted writes.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        for d in [
            root.clone(),
            root.join("partial"),
            root.join("tmp"),
            root.join("chunks"),
            root.join("quarantine"),
        ] {
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        // tmp/ only ever holds files between write and rename: anything there now is
        // from a crash and was never visible as a blob.
        let tmp = root.join("tmp");
        for e in fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        Ok(Self {
            root,
            tmp_counter: AtomicU64::new(0),
        })
    }

    fn final_path(&self, id: &ContentId) -> PathBuf {
        self.root.join(id.to_string())
    }

    fn partial_path(&self, id: &ContentId) -> PathBuf {
        self.root.join("partial").join(id.to_string())
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }

    /// Whether a complete blob is stored.
    pub fn has(&self, id: &ContentId) -> bool {
        self.final_path(id).is_file()
    }

    /// Path of a complete blob.
    pub fn path(&self, id: &ContentId) -> Option<PathBuf> {
        let p = self.final_path(id);
        p.is_file().then_some(p)
    }

    /// Size of a complete blob.
    pub fn size(&self, id: &ContentId) -> Option<u64> {
        fs::metadata(self.final_path(id)).ok().map(|m| m.len())
    }

    /// Stores bytes under their id (idempotent) and returns the id.
    pub fn put(&self, bytes: &[u8]) -> Result<ContentId, BlobError> {
        let id = ContentId::of(bytes);
        if self.has(&id) {
            return Ok(id);
        }
        let tmp = self.tmp_path();
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        self.write_chunk_index(&id, &chunk::digests(bytes, chunk::CHUNK_SIZE))?;
        self.install(&tmp, &id)?;
        Ok(id)
    }

    fn install(&self, from: &Path, id: &ContentId) -> Result<(), BlobError> {
        let to = self.final_path(id);
        fs::rename(from, &to).map_err(io(&to))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&self.root) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Copies the file at `src` into `tmp/` while hashing it, and keeps the copy only
    /// if it is exactly `size` bytes whose id is `id`. The copy is not visible as a blob
    /// until [`Self::install_staged`]; dropping the [`Staged`] removes it. At most
    /// `size + 1` bytes are read, so a file larger than announced costs nothing more.
    pub fn stage(&self, src: &Path, id: &ContentId, size: u64) -> Result<Staged, BlobError> {
        let tmp = self.tmp_path();
        let staged = Staged {
            id: *id,
            path: tmp.clone(),
        };
        let from = File::open(src).map_err(io(src))?;
        let mut to = File::create(&tmp).map_err(io(&tmp))?;
        let got = copy_hashed(from, Some((&mut to, &tmp)), src, size)?;
        check_read(id, size, got)?;
        to.sync_all().map_err(io(&tmp))?;
        Ok(staged)
    }

    /// Checks, without copying, that the file at `src` is exactly `size` bytes whose id
    /// is `id` (for a blob this store already holds: the file must still be right).
    pub fn verify_file(src: &Path, id: &ContentId, size: u64) -> Result<(), BlobError> {
        let from = File::open(src).map_err(io(src))?;
        let got = copy_hashed(from, None, src, size)?;
        check_read(id, size, got)
    }

    /// Makes a staged copy a served blob (idempotent if the blob appeared meanwhile).
    pub fn install_staged(&self, staged: Staged) -> Result<(), BlobError> {
        let id = staged.id;
        if self.has(&id) {
            return Ok(());
        }
        self.install(&staged.path, &id)
    }

    /// Reads `len` bytes at `offset` of a complete blob.
    pub fn read_range(&self, id: &ContentId, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        let p = self.final_path(id);
        let mut f = File::open(&p).map_err(|_| BlobError::NotFound(*id))?;
        f.seek(SeekFrom::Start(offset)).map_err(io(&p))?;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        f.take(len).read_to_end(&mut buf).map_err(io(&p))?;
        Ok(buf)
    }

    /// Reads chunk `index` of a complete blob.
    pub fn read_chunk(&self, id: &ContentId, index: u64) -> Result<Vec<u8>, BlobError> {
        let size = self.size(id).ok_or(BlobError::NotFound(*id))?;
        if index >= chunk::count(size, chunk::CHUNK_SIZE) {
            return Err(BlobError::OutOfRange {
                content: *id,
                index,
            });
        }
        let (off, len) = chunk::range(size, chunk::CHUNK_SIZE, index);
        self.read_range(id, off, len)
    }

    /// Size on disk of a partial download.
    pub fn partial_size(&self, id: &ContentId) -> Option<u64> {
        fs::metadata(self.partial_path(id)).ok().map(|m| m.len())
    }

    /// Removes a partial download (not the complete blob); returns whether there was one.
    pub fn remove_partial(&self, id: &ContentId) -> Result<bool, BlobError> {
        let p = self.partial_path(id);
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&p)(e)),
        }
    }

    /// Removes a blob and any partial download of it.
    pub fn remove(&self, id: &ContentId) -> Result<bool, BlobError> {
        let _ = fs::remove_file(self.partial_path(id));
        let _ = fs::remove_file(self.chunks_path(id));
        match fs::remove_file(self.final_path(id)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&self.final_path(id))(e)),
        }
    }

    /// Ids of all complete blobs.
    pub fn list(&self) -> Vec<ContentId> {
        let Ok(rd) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Ids of partial downloads on disk.
    pub fn partials(&self) -> Vec<ContentId> {
        let Ok(rd) = fs::read_dir(self.root.join("partial")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }
}

/// Reads at most `size + 1` bytes of `from` (writing them to `to` if given) and returns
/// how many were read and their SHA-256.
fn copy_hashed(
    from: File,
    mut to: Option<(&mut File, &Path)>,
    src: &Path,
    size: u64,
) -> Result<(u64, [u8; 32]), BlobError> {
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut limited = from.take(size.saturating_add(1));
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = limited.read(&mut buf).map_err(io(src))?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        sha2::Digest::update(&mut hasher, &buf[..n]);
        if let Some((t, path)) = to.as_mut() {
            t.write_all(&buf[..n]).map_err(io(path))?;
        }
    }
    Ok((n_total, sha2::Digest::finalize(hasher).into()))
}

fn check_read(id: &ContentId, size: u64, (got, digest): (u64, [u8; 32])) -> Result<(), BlobError> {
    if got != size {
        return Err(BlobError::WrongSize {
            content: *id,
            expected: size,
            larger: got > size,
        });
    }
    if digest != *id.digest() {
        return Err(BlobError::Mismatch(*id));
    }
    Ok(())
}

/// A verified copy of a blob waiting in `tmp/` to be installed; removed when dropped
/// uninstalled.
#[derive(Debug)]
pub struct Staged {
    id: ContentId,
    path: PathBuf,
}

impl Staged {
    /// The blob.
    pub fn id(&self) -> ContentId {
        self.id
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After install the file has been renamed away and this is a no-op.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn put_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let b = blob(3 << 20);
        let id = s.put(&b).unwrap();
        assert!(s.has(&id));
        assert_eq!(s.read_chunk(&id, 1).unwrap(), b[1 << 20..2 << 20]);
        assert!(matches!(
            s.read_chunk(&id, 3),
            Err(BlobError::OutOfRange { .. })
        ));
        assert_eq!(s.list(), vec![id]);
        assert!(s.remove(&id).unwrap());
        assert!(!s.has(&id));
    }

    #[test]
    fn download_verifies_chunks_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let b = blob((2 << 20) + 5);
        let id = ContentId::of(&b);
        let d = chunk::digests(&b, chunk::CHUNK_SIZE);
        let p = s.begin(id, b.len() as u64, &d).unwrap();
        assert_eq!(p.missing(), vec![0, 1, 2]);
        // A corrupt chunk is refused and changes nothing.
        let mut bad = b[..1 << 20].to_vec();
        bad[5] ^= 1;
        assert!(matches!(
            p.write_chunk(0, &bad),
            Err(BlobError::BadChunk { .. })
        ));
        p.write_chunk(2, &b[2 << 20..]).unwrap();
        p.write_chunk(0, &b[..1 << 20]).unwrap();
        assert!(!s.has(&id), "a partial blob is never visible");
        drop(p);
        // Resume: the two written chunks are found again by hashing.
        let p = s.begin(id, b.len() as u64, &d).unwrap();
        assert_eq!(p.missing(), vec![1]);
        p.write_chunk(1, &b[1 << 20..2 << 20]).unwrap();
        assert_eq!(p.finish(&s).unwrap(), id);
        assert_eq!(fs::read(s.path(&id).unwrap()).unwrap(), b);
        assert!(s.partials().is_empty());
    }

    #[test]
    fn leftovers_in_tmp_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("tmp").join("junk"), b"x").unwrap();
        drop(s);
        let s = BlobStore::open(dir.path()).unwrap();
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
        assert!(s.list().is_empty());
    }
}
