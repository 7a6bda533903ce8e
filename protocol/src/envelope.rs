//! The signed envelope around a record.
//!
//! The signature covers `"ferry-record-v1" || payload`, so a signature made for any
//! other purpose can never pass as a record signature. The record id is the CID of the
//! envelope bytes exactly as received: ids never depend on re-encoding.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::content_id::RecordId;
use crate::key::{Keypair, PublicKey};
use crate::record::Record;

/// Domain separation prefix of record signatures.
pub const SIGNING_DOMAIN: &[u8] = b"ferry-record-v1";

/// Largest envelope accepted, in bytes: it must fit a gossipsub message (64 KiB) with room
/// for framing.
pub const MAX_RECORD_BYTES: usize = 60 * 1024;

#[derive(Serialize, Deserialize)]
struct Envelope {
    payload: ByteBuf,
    signer: PublicKey,
    signature: ByteBuf,
}

/// Why envelope bytes are not a well-signed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit")]
    Oversized {
        /// Size received.
        size: usize,
    },
    /// Not CBOR of an envelope and record.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// The signature does not verify with the named signer.
    #[error("bad signature on record {id} (claimed signer {signer})")]
    BadSignature {
        /// Record id.
        id: RecordId,
        /// The key the envelope names.
        signer: PublicKey,
    },
}

/// A record whose signature has been verified, with its envelope bytes and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    /// The envelope bytes, as signed and as stored.
    pub bytes: Vec<u8>,
    /// CID of `bytes`.
    pub id: RecordId,
    /// Who signed it.
    pub signer: PublicKey,
    /// The decoded payload.
    pub record: Record,
}

fn signing_message(payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_DOMAIN.len() + payload.len());
    m.extend_from_slice(SIGNING_DOMAIN);
    m.extend_from_slice(payload);
    m
}

fn to_cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail, and our types have no non-string map keys.
    let _ = ciborium::into_writer(v, &mut buf);
    buf
}

impl SignedRecord {
    /// Signs `record` with `key`.
    pub fn sign(key: &Keypair, record: Record) -> Self {
        let payload = to_cbor(&record);
        let signature = key.sign(&signing_message(&payload));
        let env = Envelope {
            payload: ByteBuf::from(payload),
            signer: key.public(),
            signature: ByteBuf::from(signature.to_vec()),
        };
        let bytes = to_cbor(&env);
        Self {
            id: RecordId::of(&bytes),
            bytes,
            signer: key.public(),
            record,
        }
    }

    /// Decodes envelope bytes and verifies the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(EnvelopeError::Oversized { size: bytes.len() });
        }
        let env: Envelope = ciborium::from_reader(bytes)
            .map_err(|e| EnvelopeError::Malformed(format!("envelope: {e}")))?;
        // Only the canonical encoding is accepted: otherwise anyone could append bytes
        // or re-encode integers and mint a second id for the same signed record, which
        // would look like an equivocation by its signer.
        if to_cbor(&env) != bytes {
            return Err(EnvelopeError::Malformed(
                "envelope is not canonically encoded".into(),
            ));
        }
        let id = RecordId::of(bytes);
        let sig: [u8; 64] =
            env.signature
                .as_slice()
                .try_into()
                .map_err(|_| EnvelopeError::BadSignature {
                    id,
                    signer: env.signer,
                })?;
        if !env.signer.verify(&signing_message(&env.payload), &sig) {
            return Err(EnvelopeError::BadSignature {
                id,
                signer: env.signer,
            });
        }
        let record: Record = ciborium::from_reader(env.payload.as_slice())
            .map_err(|e| EnvelopeError::Malformed(format!("payload: {e}")))?;
        if to_cbor(&record) != env.payload.as_slice() {
            // Either unknown fields from a newer format or a non-canonical encoding. A
            // newer format announces itself through `format`; only refuse our own.
            if record.format <= crate::record::RECORD_FORMAT {
                return Err(EnvelopeError::Malformed(
                    "payload is not canonically encoded".into(),
                ));
            }
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            id,
            signer: env.signer,
            record,
        })
    }
}
