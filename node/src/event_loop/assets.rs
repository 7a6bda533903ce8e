//! The files of assets trees, in the set of blobs a network names.
//!
//! A node provides and serves only blobs its network's releases name. A release names
//! its assets tree directly and the tree's files through the tree, so the files join
//! the set once this node holds the tree and has checked it: at publish, when the API
//! has checked a downloaded tree, and at start for every stored tree.

use ferry_protocol::ContentId;
use ferry_protocol::assets::{AssetTree, MAX_TREE_BYTES};

use super::EventLoop;

impl EventLoop {
    /// Names the files of a checked tree and provides those stored here.
    pub(super) fn name_assets(&mut self, files: Vec<ContentId>) {
        for id in files {
            if self.named.insert(id) && self.blobs.has(&id) && self.deletion_reason(&id).is_none() {
                self.provide(&id);
            }
        }
    }

    /// At start: names the files of every stored tree of this network's releases.
    pub(super) fn name_stored_assets(&mut self) {
        let Ok(packages) = self.index.packages() else {
            return;
        };
        let mut files = Vec::new();
        for p in packages {
            for r in self.index.releases(&p).unwrap_or_default() {
                let Some(a) = &r.attachments.assets else {
                    continue;
                };
                let id = a.tree.content;
                if a.tree.size > MAX_TREE_BYTES || !self.blobs.has(&id) {
                    continue;
                }
                let tree = self
                    .blobs
                    .read_range(&id, 0, a.tree.size)
                    .ok()
                    .and_then(|b| AssetTree::decode(&b).ok())
                    .filter(|t| t.check_against(a).is_ok());
                if let Some(t) = tree {
                    files.extend(t.entries.iter().filter(|e| e.size > 0).map(|e| e.content));
                }
            }
        }
        // Provided by the start-up pass over stored blobs that follows.
        self.named.extend(files);
    }
}
