//! Pins and the stored holds on blobs: the cache (blobs this node's user fetched,
//! with their last use) and blobs published here. Pinned holds are not stored: they
//! follow from the pins and the releases, so they can never go stale.

use std::collections::{BTreeMap, HashSet};

use ferry_protocol::ContentId;
use ferry_protocol::filter::{Candidate, Pattern};
use ferry_protocol::pin::{Pin, Pins};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Index, IndexError, META, RELEASES, ReleaseEntry, VERDICTS, cbor, uncbor};

/// Pin pattern → [`StoredPin`] (CBOR).
pub(super) const PINS: TableDefinition<&str, &[u8]> = TableDefinition::new("pins_v1");
/// Blob digest → last use by this node's user, ms since the epoch.
pub(super) const CACHE: TableDefinition<&[u8], u64> = TableDefinition::new("cache_v1");
/// Blob digest → when it was published on this node, ms since the epoch.
pub(super) const PUBLISHED: TableDefinition<&[u8], u64> = TableDefinition::new("published_v1");

/// A pin as stored: versioned by the table name; fields added later must default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredPin {
    pub(super) pin: Pin,
    added_ms: u64,
}

/// A blob a pinned release needs: its content or one of its attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedBlob {
    /// The blob.
    pub content: ContentId,
    /// Its size.
    pub size: u64,
    /// The release it belongs to, with `content`, `size` and `chunks` set to this blob's
    /// (so it can be handed to a download as is).
    pub entry: ReleaseEntry,
    /// The pattern of the pin that admits the release.
    pub pin: Pattern,
}

/// The blobs of one release: its content, then each attachment (as download entries).
pub fn release_blobs(entry: &ReleaseEntry) -> Vec<ReleaseEntry> {
    let mut out = vec![entry.clone()];
    for (_, a) in entry.attachments.blobs() {
        out.push(ReleaseEntry {
            content: a.content,
            size: a.size,
            chunks: a.chunks.to_vec(),
            summary: None,
            attachments: Default::default(),
            ..entry.clone()
        });
    }
    out
}

impl Index {
    /// This node's pins.
    pub fn pins(&self) -> Result<Pins, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PINS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(uncbor::<StoredPin>(v.value())?.pin);
        }
        Ok(Pins::new(out))
    }

    /// Adds or replaces the pin named by its pattern; returns whether it replaced one.
    pub fn put_pin(&self, pin: &Pin, now_ms: u64) -> Result<bool, IndexError> {
        let tx = self.db.begin_write()?;
        let replaced = {
            let mut t = tx.open_table(PINS)?;
            let key = pin.pattern().to_string();
            let stored = StoredPin {
                pin: pin.clone(),
                added_ms: now_ms,
            };
            t.insert(key.as_str(), cbor(&stored).as_slice())?.is_some()
        };
        tx.commit()?;
        Ok(replaced)
    }

    /// Removes the pin named `pattern`; returns whether there was one.
    pub fn remove_pin(&self, pattern: &Pattern) -> Result<bool, IndexError> {
        let tx = self.db.begin_write()?;
        let removed = tx
            .open_table(PINS)?
            .remove(pattern.to_string().as_str())?
            .is_some();
        tx.commit()?;
        Ok(removed)
    }

    /// Every blob that `pins` want: the content and attachments of each release some
    /// pin admits, newest release first. Content the operator deleted and releases
    /// whose summary was found to lie are left out. An attachment larger than the
    /// admitting pin's size limit is left out too: the limit bounds every blob a pin
    /// brings in, not only the component.
    pub fn pinned_blobs(&self, pins: &Pins) -> Result<Vec<PinnedBlob>, IndexError> {
        if pins.is_empty() {
            return Ok(Vec::new());
        }
        let op = self.operator_state()?;
        let tx = self.db.begin_read()?;
        let rel = tx.open_table(RELEASES)?;
        let verdicts = tx.open_table(VERDICTS)?;
        let mut releases = Vec::new();
        for item in rel.iter()? {
            let (_, v) = item?;
            let entry: ReleaseEntry = uncbor(v.value())?;
            if !pins.follows_package(&entry.package) {
                continue;
            }
            let candidate = Candidate {
                package: &entry.package,
                license: entry.license.as_deref(),
                signer: &entry.publisher,
                size: entry.size,
            };
            let Ok(pin) = pins.admits(&candidate) else {
                continue;
            };
            let lying = verdicts
                .get(entry.record.digest().as_slice())?
                .is_some_and(|v| !v.value().is_empty());
            if lying {
                continue;
            }
            let (pattern, max) = (pin.pattern().clone(), pin.filter().max_size);
            releases.push((entry, pattern, max));
        }
        // Newest first: a node that pins a busy namespace has what people are most
        // likely to want next before the back catalogue.
        releases.sort_by_key(|r| std::cmp::Reverse(r.0.time_ms));
        let mut out = Vec::new();
        for (entry, pattern, max) in releases {
            let package = entry.package.to_string();
            let version = entry.version.to_string();
            for blob in release_blobs(&entry) {
                let deleted = op.as_ref().is_some_and(|op| {
                    op.deletion(&package, Some(&version), Some(&blob.content))
                        .is_some()
                });
                if deleted || max.is_some_and(|m| blob.size > m) {
                    continue;
                }
                out.push(PinnedBlob {
                    content: blob.content,
                    size: blob.size,
                    entry: blob,
                    pin: pattern.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Gives blobs stored before holds existed a hold, once per index: blobs of
    /// releases signed by `own` count as published here, every other as cache (last
    /// used `now_ms`), so that upgrading a node never makes its first collection free
    /// what its user fetched. Returns whether it ran.
    pub fn seed_holds(
        &self,
        stored: &[ContentId],
        own: &ferry_protocol::PublicKey,
        now_ms: u64,
    ) -> Result<bool, IndexError> {
        const SEEDED: &str = "holds_seeded";
        {
            let tx = self.db.begin_read()?;
            if tx.open_table(META)?.get(SEEDED)?.is_some() {
                return Ok(false);
            }
        }
        let mut published = Vec::new();
        let mut cached = Vec::new();
        for id in stored {
            let mine = self
                .releases_by_content(id)?
                .iter()
                .any(|r| r.publisher == *own);
            if mine {
                published.push(*id);
            } else {
                cached.push(*id);
            }
        }
        let tx = self.db.begin_write()?;
        {
            let mut p = tx.open_table(PUBLISHED)?;
            for id in &published {
                p.insert(id.digest().as_slice(), now_ms)?;
            }
            let mut c = tx.open_table(CACHE)?;
            for id in &cached {
                c.insert(id.digest().as_slice(), now_ms)?;
            }
            tx.open_table(META)?.insert(SEEDED, 1)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Records that this node's user used a blob now (fetched or read it).
    pub fn touch_cache(&self, content: &ContentId, now_ms: u64) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        tx.open_table(CACHE)?
            .insert(content.digest().as_slice(), now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Cache entries: blob → last use.
    pub fn cache(&self) -> Result<BTreeMap<ContentId, u64>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CACHE)?;
        let mut out = BTreeMap::new();
        for item in t.iter()? {
            let (k, v) = item?;
            if let Ok(d) = <[u8; 32]>::try_from(k.value()) {
                out.insert(ContentId::from_digest(d), v.value());
            }
        }
        Ok(out)
    }

    /// Drops the cache entries of `contents`.
    pub fn forget_cache(&self, contents: &[ContentId]) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(CACHE)?;
            for c in contents {
                t.remove(c.digest().as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records blobs published on this node (a release's content and attachments).
    pub fn mark_published(&self, contents: &[ContentId], now_ms: u64) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(PUBLISHED)?;
            for c in contents {
                t.insert(c.digest().as_slice(), now_ms)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Blobs published on this node.
    pub fn published(&self) -> Result<HashSet<ContentId>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PUBLISHED)?;
        let mut out = HashSet::new();
        for item in t.iter()? {
            let (k, _) = item?;
            if let Ok(d) = <[u8; 32]>::try_from(k.value()) {
                out.insert(ContentId::from_digest(d));
            }
        }
        Ok(out)
    }
}
