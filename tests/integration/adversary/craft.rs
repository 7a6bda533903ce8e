//! Crafting records the way an attacker would: with `ferry_protocol`'s own types and
//! signing, plus envelopes assembled by hand where the protocol's API (rightly) offers
//! no way to make them (a signature that does not match, a signer that did not sign).

use ferry_protocol::component::PackageKind;
use ferry_protocol::envelope::SIGNING_DOMAIN;
use ferry_protocol::record::{Body, RECORD_FORMAT, Record, Release};
use ferry_protocol::{ContentId, Keypair, NetworkId, PublicKey, RecordId, SignedRecord, chunk};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The envelope as it travels: the same field names and order as the protocol's, so
/// that what we encode is canonical and only the part we meant to break is broken.
#[derive(Serialize, Deserialize)]
struct Envelope {
    payload: ByteBuf,
    signer: ByteBuf,
    signature: ByteBuf,
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("encoding CBOR");
    out
}

fn signing_message(payload: &[u8]) -> Vec<u8> {
    [SIGNING_DOMAIN, payload].concat()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where a crafted record goes: its network, log, position and timestamp.
#[derive(Clone)]
pub struct At {
    /// The network.
    pub network: Option<NetworkId>,
    /// The log.
    pub log: String,
    /// Position.
    pub seq: u64,
    /// The record before it.
    pub prev: Option<RecordId>,
    /// Claimed time.
    pub time_ms: u64,
}

impl At {
    /// The record at this place saying `body`.
    pub fn record(&self, body: Body) -> Record {
        Record {
            format: RECORD_FORMAT,
            network: self.network,
            log: self.log.clone(),
            seq: self.seq,
            prev: self.prev,
            time_ms: self.time_ms,
            body,
        }
    }

    /// `body` at this place, properly signed by `key`.
    pub fn signed(&self, key: &Keypair, body: Body) -> SignedRecord {
        SignedRecord::sign(key, self.record(body))
    }
}

/// A release body of `bytes` as `version`, with a truthful summary.
pub fn release(version: &str, bytes: &[u8], license: Option<&str>) -> Body {
    let checked = ferry_protocol::component::check(bytes).expect("a valid component");
    Body::Release(Release {
        version: version.into(),
        kind: PackageKind::Component,
        content: ContentId::of(bytes),
        size: bytes.len() as u64,
        chunk_size: chunk::CHUNK_SIZE,
        chunks: ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
        description: Some("crafted by the adversary".into()),
        license: license.map(String::from),
        summary: Some(checked.summary),
        attachments: Default::default(),
    })
}

/// An envelope that names `claimed` as its signer but carries a signature made by
/// `actual`: a forgery of `claimed`'s signature.
pub fn forged(claimed: &PublicKey, actual: &Keypair, record: &Record) -> Vec<u8> {
    let payload = cbor(record);
    let signature = actual.sign(&signing_message(&payload));
    cbor(&Envelope {
        payload: ByteBuf::from(payload),
        signer: ByteBuf::from(claimed.as_bytes().to_vec()),
        signature: ByteBuf::from(signature.to_vec()),
    })
}

/// `original`'s envelope with its payload replaced by `record` and its signature kept:
/// a signed record altered in transit.
pub fn tampered(original: &SignedRecord, record: &Record) -> Vec<u8> {
    let env: Envelope = ciborium::from_reader(original.bytes.as_slice()).expect("an envelope");
    cbor(&Envelope {
        payload: ByteBuf::from(cbor(record)),
        signer: env.signer,
        signature: env.signature,
    })
}
