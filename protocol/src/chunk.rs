//! Fixed-size chunking of blobs.
//!
//! A release lists the SHA-256 of every chunk so that a downloader can verify each chunk
//! the moment it arrives, from whichever peer sent it, long before the whole blob is in.

use crate::content_id::{Digest32, sha256};

/// Size of every chunk but the last: 1 MiB.
pub const CHUNK_SIZE: u32 = 1 << 20;

/// Number of chunks of a blob of `size` bytes (an empty blob has none).
pub fn count(size: u64, chunk_size: u32) -> u64 {
    if chunk_size == 0 {
        return 0;
    }
    size.div_ceil(u64::from(chunk_size))
}

/// Byte range `(offset, len)` of chunk `index`.
pub fn range(size: u64, chunk_size: u32, index: u64) -> (u64, u64) {
    let off = index.saturating_mul(u64::from(chunk_size));
    let len = size.saturating_sub(off).min(u64::from(chunk_size));
    (off, len)
}

/// The digests of all chunks of `bytes`, concatenated (32 bytes each).
pub fn digests(bytes: &[u8], chunk_size: u32) -> Vec<u8> {
    let step = (chunk_size as usize).max(1);
    let mut out = Vec::with_capacity(bytes.len().div_ceil(step) * 32);
    for c in bytes.chunks(step) {
        out.extend_from_slice(&sha256(c));
    }
    out
}

/// The digest of chunk `index` in a concatenated digest list.
pub fn digest_at(digests: &[u8], index: u64) -> Option<Digest32> {
    let start = usize::try_from(index).ok()?.checked_mul(32)?;
    digests.get(start..start.checked_add(32)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_math() {
        assert_eq!(count(0, 4), 0);
        assert_eq!(count(4, 4), 1);
        assert_eq!(count(5, 4), 2);
        assert_eq!(range(5, 4, 1), (4, 1));
        let d = digests(b"abcdefghi", 4);
        assert_eq!(d.len(), 3 * 32);
        assert_eq!(digest_at(&d, 2), Some(sha256(b"i")));
        assert_eq!(digest_at(&d, 3), None);
        assert_eq!(digest_at(&d, u64::MAX), None);
    }
}
