//! Downloads in progress: verified chunks written into `blobs/partial/<cid>` from any
//! thread, and the whole-blob hash computed while they arrive.
//!
//! A [`ChunkWriter`] checks a chunk against its signed digest and writes it at its
//! offset; writers share the partial file, so several chunks are hashed and written at
//! once on blocking threads while the event loop keeps moving bytes. The content id
//! still has to be checked over the whole blob (a release's chunk list could contradict
//! its id), but that pass runs as the contiguous prefix of chunks grows, so by the time
//! the last chunk lands little or nothing is left to hash.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferry_protocol::chunk;
use ferry_protocol::content_id::{ContentId, sha256};
use sha2::Digest;

use super::{BlobError, BlobStore, io};

/// Reads exactly `buf.len()` bytes at `off` (no shared cursor, so threads don't race).
fn read_at(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n =
                std::os::windows::fs::FileExt::seek_read(f, &mut buf[done..], off + done as u64)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes all of `buf` at `off`.
fn write_at(f: &File, buf: &[u8], off: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(f, buf, off)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            done += std::os::windows::fs::FileExt::seek_write(f, &buf[done..], off + done as u64)?;
        }
        Ok(())
    }
}

/// The whole-blob hash over the contiguous prefix of chunks held so far.
struct Prefix {
    hasher: sha2::Sha256,
    /// Chunks `0..next` are in `hasher`.
    next: u64,
}

#[derive(Debug)]
struct Shared {
    id: ContentId,
    size: u64,
    digests: Vec<u8>,
    have: Vec<AtomicBool>,
    file: File,
    path: PathBuf,
    prefix: Mutex<PrefixBox>,
}

/// `Prefix` is not `Debug`; this wrapper says why it is left out.
struct PrefixBox(Prefix);

impl std::fmt::Debug for PrefixBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prefix {{ next: {} }}", self.0.next)
    }
}

impl Shared {
    fn count(&self) -> u64 {
        self.have.len() as u64
    }

    fn has(&self, index: u64) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.have.get(i))
            .is_some_and(|h| h.load(Ordering::Acquire))
    }

    /// Hashes every held chunk that extends the prefix; `fresh` is chunk `index`'s
    /// bytes, already in memory.
    fn advance(&self, fresh: Option<(u64, &[u8])>) -> Result<(), BlobError> {
        let Ok(mut p) = self.prefix.lock() else {
            return Ok(());
        };
        let p = &mut p.0;
        let mut buf = Vec::new();
        while p.next < self.count() && self.has(p.next) {
            let (off, len) = chunk::range(self.size, chunk::CHUNK_SIZE, p.next);
            match fresh {
                Some((i, bytes)) if i == p.next => p.hasher.update(bytes),
                _ => {
                    buf.resize(len as usize, 0);
                    read_at(&self.file, &mut buf, off).map_err(io(&self.path))?;
                    p.hasher.update(&buf);
                }
            }
            p.next += 1;
        }
        Ok(())
    }

    fn write(&self, index: u64, bytes: &[u8]) -> Result<(), BlobError> {
        let slot = usize::try_from(index)
            .ok()
            .filter(|i| *i < self.have.len())
            .ok_or(BlobError::OutOfRange {
                content: self.id,
                index,
            })?;
        let (off, len) = chunk::range(self.size, chunk::CHUNK_SIZE, index);
        if bytes.len() as u64 != len
            || chunk::digest_at(&self.digests, index) != Some(sha256(bytes))
        {
            return Err(BlobError::BadChunk {
                content: self.id,
                index,
            });
        }
        write_at(&self.file, bytes, off).map_err(io(&self.path))?;
        self.have[slot].store(true, Ordering::Release);
        self.advance(Some((index, bytes)))
    }
}

/// A download in progress.
#[derive(Debug)]
pub struct Partial {
    shared: Arc<Shared>,
}

/// Writes verified chunks of one download; cheap to clone and send to other threads.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    shared: Arc<Shared>,
}

impl ChunkWriter {
    /// Verifies chunk `index` against its digest, then writes it.
    pub fn write(&self, index: u64, bytes: &[u8]) -> Result<(), BlobError> {
        self.shared.write(index, bytes)
    }
}

impl BlobStore {
    /// Starts or resumes a download of `id`, whose chunks must match `digests`.
    pub fn begin(&self, id: ContentId, size: u64, digests: &[u8]) -> Result<Partial, BlobError> {
        let path = self.partial_path(&id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        let count = chunk::count(size, chunk::CHUNK_SIZE);
        let on_disk = file.metadata().map_err(io(&path))?.len();
        let mut have = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut prefix = Prefix {
            hasher: sha2::Sha256::new(),
            next: 0,
        };
        // Re-hash what a previous run left: a chunk counts as present only if it
        // matches its signed digest, so a torn write is simply fetched again. The
        // unbroken run from the start also goes into the whole-blob hash.
        let mut buf = Vec::new();
        for i in 0..count {
            let (off, len) = chunk::range(size, chunk::CHUNK_SIZE, i);
            let mut ok = false;
            if off + len <= on_disk {
                buf.resize(len as usize, 0);
                read_at(&file, &mut buf, off).map_err(io(&path))?;
                ok = chunk::digest_at(digests, i) == Some(sha256(&buf));
                if ok && prefix.next == i {
                    prefix.hasher.update(&buf);
                    prefix.next += 1;
                }
            }
            have.push(AtomicBool::new(ok));
        }
        Ok(Partial {
            shared: Arc::new(Shared {
                id,
                size,
                digests: digests.to_vec(),
                have,
                file,
                path,
                prefix: Mutex::new(PrefixBox(prefix)),
            }),
        })
    }
}

impl Partial {
    /// The blob being downloaded.
    pub fn id(&self) -> ContentId {
        self.shared.id
    }

    /// Total size.
    pub fn size(&self) -> u64 {
        self.shared.size
    }

    /// A writer for other threads.
    pub fn writer(&self) -> ChunkWriter {
        ChunkWriter {
            shared: self.shared.clone(),
        }
    }

    /// Indices of chunks still missing.
    pub fn missing(&self) -> Vec<u64> {
        (0..self.shared.count())
            .filter(|i| !self.shared.has(*i))
            .collect()
    }

    /// Bytes already verified and written.
    pub fn done_bytes(&self) -> u64 {
        (0..self.shared.count())
            .filter(|i| self.shared.has(*i))
            .map(|i| chunk::range(self.shared.size, chunk::CHUNK_SIZE, i).1)
            .sum()
    }

    /// Whether chunk `index` is already verified and written.
    pub fn has_chunk(&self, index: u64) -> bool {
        self.shared.has(index)
    }

    /// Whether every chunk is present.
    pub fn is_complete(&self) -> bool {
        (0..self.shared.count()).all(|i| self.shared.has(i))
    }

    /// Verifies chunk `index` against its digest, then writes it.
    pub fn write_chunk(&self, index: u64, bytes: &[u8]) -> Result<(), BlobError> {
        self.shared.write(index, bytes)
    }

    /// Checks the whole blob against its id, fsyncs it and makes it a served blob.
    /// Writers still held elsewhere may only write chunks already here (the same
    /// verified bytes).
    pub fn finish(self, store: &BlobStore) -> Result<ContentId, BlobError> {
        let s = &self.shared;
        if !self.is_complete() {
            return Err(BlobError::Mismatch(s.id));
        }
        s.file.set_len(s.size).map_err(io(&s.path))?;
        s.file.sync_all().map_err(io(&s.path))?;
        // Chunks were verified one by one; the whole-blob hash also catches a release
        // whose chunk list contradicts its content id. Most of it is done already.
        s.advance(None)?;
        let digest: [u8; 32] = match s.prefix.lock() {
            Ok(mut p) => std::mem::take(&mut p.0.hasher).finalize().into(),
            Err(_) => [0; 32],
        };
        if digest != *s.id.digest() {
            let _ = std::fs::remove_file(&s.path);
            return Err(BlobError::Mismatch(s.id));
        }
        store.write_chunk_index(&s.id, &s.digests)?;
        store.install(&s.path, &s.id)?;
        Ok(s.id)
    }
}
