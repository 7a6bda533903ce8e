//! Checking stored blobs again before their bytes leave the store.
//!
//! Bytes were verified when they were stored, but disks fail and people edit files:
//! the cache must not hand out what it no longer holds. A whole-blob check costs one
//! SHA-256 pass (about 1 GiB/s); serving a chunk costs one chunk's hash against the
//! digest list kept in `blobs/chunks/<cid>`. A blob stored before digest lists existed
//! gets its list on first use, from bytes checked against the content id.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use ferry_protocol::chunk;
use ferry_protocol::content_id::{ContentId, sha256};
use sha2::Digest;

use super::{BlobError, BlobStore, io};

impl BlobStore {
    pub(super) fn chunks_path(&self, id: &ContentId) -> PathBuf {
        self.root.join("chunks").join(id.to_string())
    }

    fn quarantine_path(&self, id: &ContentId) -> PathBuf {
        self.root.join("quarantine").join(id.to_string())
    }

    /// Writes the chunk digest list of `id` (atomically: temp file and rename).
    pub(super) fn write_chunk_index(
        &self,
        id: &ContentId,
        digests: &[u8],
    ) -> Result<(), BlobError> {
        let tmp = self.tmp_path();
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(digests).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        let to = self.chunks_path(id);
        fs::rename(&tmp, &to).map_err(io(&to))
    }

    /// Hashes the whole stored blob against its id. `Corrupt` if it no longer matches;
    /// on success the chunk digest list is (re)written from the checked bytes.
    pub fn verify(&self, id: &ContentId) -> Result<(), BlobError> {
        let p = self.final_path(id);
        let mut f = File::open(&p).map_err(|_| BlobError::NotFound(*id))?;
        let mut whole = sha2::Sha256::new();
        let mut digests = Vec::new();
        let mut buf = vec![0u8; chunk::CHUNK_SIZE as usize];
        loop {
            // Fill a whole chunk (short reads happen), so digests line up with chunks.
            let mut n = 0;
            while n < buf.len() {
                let got = f.read(&mut buf[n..]).map_err(io(&p))?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if n == 0 {
                break;
            }
            whole.update(&buf[..n]);
            digests.extend_from_slice(&sha256(&buf[..n]));
            if n < buf.len() {
                break;
            }
        }
        let digest: [u8; 32] = whole.finalize().into();
        if digest != *id.digest() {
            return Err(BlobError::Corrupt(*id));
        }
        let current = fs::read(self.chunks_path(id)).ok();
        if current.as_deref() != Some(digests.as_slice()) {
            self.write_chunk_index(id, &digests)?;
        }
        Ok(())
    }

    /// The chunk digests of a stored blob, after checking the blob against its id.
    pub fn chunk_digests(&self, id: &ContentId) -> Result<Vec<u8>, BlobError> {
        self.verify(id)?;
        let p = self.chunks_path(id);
        fs::read(&p).map_err(io(&p))
    }

    /// The stored digest of chunk `index` of `id`, if the digest list has it.
    fn stored_digest(&self, id: &ContentId, index: u64) -> Option<[u8; 32]> {
        let mut f = File::open(self.chunks_path(id)).ok()?;
        f.seek(SeekFrom::Start(index.checked_mul(32)?)).ok()?;
        let mut d = [0u8; 32];
        f.read_exact(&mut d).ok()?;
        Some(d)
    }

    /// Reads chunk `index` of a complete blob after checking it against its digest.
    /// A chunk that does not match means the blob or its digest list changed on disk;
    /// the whole blob is then checked against its id: `Corrupt` if the blob is bad,
    /// else the list is rebuilt and the chunk served.
    pub fn read_verified_chunk(&self, id: &ContentId, index: u64) -> Result<Vec<u8>, BlobError> {
        let bytes = self.read_chunk(id, index)?;
        let digest = sha256(&bytes);
        if self.stored_digest(id, index) == Some(digest) {
            return Ok(bytes);
        }
        self.verify(id)?;
        if self.stored_digest(id, index) == Some(digest) {
            Ok(bytes)
        } else {
            // The blob matched its id as a whole, so this read raced a change.
            Err(BlobError::Corrupt(*id))
        }
    }

    /// Moves a blob that failed a check out of the served set, keeping its bytes under
    /// `blobs/quarantine/` for inspection. Returns whether there was one.
    pub fn quarantine(&self, id: &ContentId) -> Result<bool, BlobError> {
        let from = self.final_path(id);
        if !from.is_file() {
            return Ok(false);
        }
        let to = self.quarantine_path(id);
        fs::rename(&from, &to).map_err(io(&to))?;
        let _ = fs::remove_file(self.chunks_path(id));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 13 % 251) as u8).collect()
    }

    fn flip(path: &std::path::Path, at: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[at as usize] ^= 0x40;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn corrupt_bytes_are_found_and_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let b = blob((2 << 20) + 100);
        let id = s.put(&b).unwrap();
        s.verify(&id).unwrap();
        assert_eq!(s.read_verified_chunk(&id, 2).unwrap(), b[2 << 20..]);
        flip(&s.final_path(&id), (1 << 20) + 5);
        assert!(matches!(s.verify(&id), Err(BlobError::Corrupt(_))));
        // Chunk 0 is still intact and may be served; chunk 1 is not.
        assert_eq!(s.read_verified_chunk(&id, 0).unwrap(), b[..1 << 20]);
        assert!(matches!(
            s.read_verified_chunk(&id, 1),
            Err(BlobError::Corrupt(_))
        ));
        assert!(s.quarantine(&id).unwrap());
        assert!(!s.has(&id));
        assert!(s.list().is_empty());
        assert!(dir.path().join("quarantine").join(id.to_string()).is_file());
        assert!(!s.quarantine(&id).unwrap());
    }

    #[test]
    fn a_damaged_or_missing_digest_list_is_rebuilt_from_good_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let b = blob(3 << 20);
        let id = s.put(&b).unwrap();
        flip(&s.chunks_path(&id), 40);
        assert_eq!(s.read_verified_chunk(&id, 1).unwrap(), b[1 << 20..2 << 20]);
        fs::remove_file(s.chunks_path(&id)).unwrap();
        assert_eq!(s.read_verified_chunk(&id, 2).unwrap(), b[2 << 20..]);
        assert_eq!(
            fs::read(s.chunks_path(&id)).unwrap(),
            chunk::digests(&b, chunk::CHUNK_SIZE)
        );
    }
}
