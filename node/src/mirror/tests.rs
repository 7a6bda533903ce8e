//! Mirror configuration on a real data directory: add, replace, remove, and refusals.

use ferry_protocol::RecordId;
use ferry_protocol::filter::{Filter, Pattern};

use super::*;
use crate::data_dir::Membership;

fn dir_of(network: NetworkId) -> (tempfile::TempDir, DataDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::open(tmp.path()).unwrap();
    dir.set_membership(&Membership {
        network,
        genesis: None,
    })
    .unwrap();
    (tmp, dir)
}

fn config(network: NetworkId, patterns: &[&str]) -> MirrorConfig {
    MirrorConfig {
        network,
        bootstrap: vec![
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"
                .into(),
        ],
        filter: Filter::new(
            patterns
                .iter()
                .map(|p| p.parse::<Pattern>().unwrap())
                .collect(),
        ),
        added_ms: 1,
    }
}

#[test]
fn mirrors_are_added_replaced_and_removed() {
    let own = RecordId::of(b"own");
    let other = RecordId::of(b"other");
    let (_tmp, dir) = dir_of(own);
    assert!(load(&dir).unwrap().is_empty(), "no file means no mirrors");
    assert!(!add(&dir, config(other, &["wasi:*"])).unwrap());
    let mdir = mirror_dir(&dir, &other);
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(mdir.join("index.redb"), b"x").unwrap();
    std::fs::write(mdir.join("node.key"), [7; 32]).unwrap();
    assert!(
        add(&dir, config(other, &["wasi:*"])).unwrap(),
        "same network replaces"
    );
    assert!(
        mdir.join("index.redb").exists(),
        "the same filter keeps the index"
    );
    assert!(add(&dir, config(other, &["wasi:http"])).unwrap());
    assert!(
        !mdir.join("index.redb").exists(),
        "a changed filter starts the index afresh"
    );
    assert!(
        mdir.join("node.key").exists(),
        "the mirror keeps its identity"
    );
    let list = load(&dir).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].filter.include[0].to_string(), "wasi:http");
    std::fs::create_dir_all(mirror_dir(&dir, &other)).unwrap();
    std::fs::write(mirror_dir(&dir, &other).join("index.redb"), b"x").unwrap();
    assert_eq!(remove(&dir, &other).unwrap().network, other);
    assert!(
        !mirror_dir(&dir, &other).exists(),
        "the mirror's index is deleted"
    );
    assert!(load(&dir).unwrap().is_empty());
    assert!(matches!(
        remove(&dir, &other),
        Err(MirrorError::NotFound(_))
    ));
}

#[test]
fn bad_mirrors_are_refused_and_change_nothing() {
    let own = RecordId::of(b"own");
    let other = RecordId::of(b"other");
    let (_tmp, dir) = dir_of(own);
    assert!(matches!(
        add(&dir, config(own, &["wasi:*"])),
        Err(MirrorError::OwnNetwork(_))
    ));
    assert!(matches!(
        add(&dir, config(other, &[])),
        Err(MirrorError::EmptyFilter)
    ));
    let mut no_peer_id = config(other, &["wasi:*"]);
    no_peer_id.bootstrap = vec!["/ip4/127.0.0.1/tcp/4001".into()];
    let err = add(&dir, no_peer_id).unwrap_err();
    assert!(err.to_string().contains("/ip4/127.0.0.1/tcp/4001"), "{err}");
    assert!(!dir.path(MIRRORS_FILE).exists(), "nothing was written");
    std::fs::write(dir.path(MIRRORS_FILE), b"[{\"network\": 1}]").unwrap();
    let err = load(&dir).unwrap_err();
    assert!(err.to_string().contains(MIRRORS_FILE), "{err}");
}
