//! Which blobs a network's releases name: a node provides and serves in a network only
//! those, so that a blob it holds for another network (a mirror shares the blob store)
//! is never announced or handed out where no release names it.

use std::collections::HashSet;

use ferry_protocol::ContentId;
use redb::{ReadableDatabase, ReadableTable};

use super::{Index, IndexError, RELEASES, ReleaseEntry, uncbor};

/// The blobs of one release: its content and its attachments.
pub fn blobs_of(e: &ReleaseEntry) -> impl Iterator<Item = ContentId> + '_ {
    std::iter::once(e.content).chain(e.attachments.blobs().map(|(_, a)| a.content))
}

impl Index {
    /// Every blob some release in this index names (content and attachments).
    pub fn named_blobs(&self) -> Result<HashSet<ContentId>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(RELEASES)?;
        let mut out = HashSet::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.extend(blobs_of(&uncbor::<ReleaseEntry>(v.value())?));
        }
        Ok(out)
    }
}
