//! Content ids: CIDv1, raw codec, sha2-256.
//!
//! The 32-byte digest inside is the same one OCI and `wkg.lock` write as
//! `sha256:<hex>`, so both spellings name the same bytes and convert losslessly.

use std::fmt;
use std::str::FromStr;

use cid::Cid;
use multihash::Multihash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Multicodec of raw bytes.
pub const RAW_CODEC: u64 = 0x55;
/// Multicodec of CBOR, used for record ids (the envelope is CBOR).
pub const CBOR_CODEC: u64 = 0x51;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// Why a string or byte string is not a content id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentIdError {
    /// Neither a CID nor `sha256:<hex>`.
    #[error("`{0}` is not a content id: expected a CID (bafk...) or sha256:<64 hex digits>")]
    Unparsable(String),
    /// A CID, but not of raw bytes hashed with sha2-256.
    #[error("CID `{0}` is not a raw sha2-256 CIDv1; ferry names blobs only that way")]
    WrongKind(String),
}

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// Hashes bytes with SHA-256.
pub fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

fn cid_of(codec: u64, digest: Digest32) -> Cid {
    // wrap() only fails when the digest is longer than the multihash's 64-byte capacity.
    let mh = Multihash::<64>::wrap(SHA2_256, &digest).unwrap_or_default();
    Cid::new_v1(codec, mh)
}

fn digest_of(cid: &Cid, codec: u64) -> Option<Digest32> {
    let mh = cid.hash();
    if cid.version() != cid::Version::V1 || cid.codec() != codec || mh.code() != SHA2_256 {
        return None;
    }
    mh.digest().try_into().ok()
}

macro_rules! cid_newtype {
    ($name:ident, $codec:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Digest32);

        impl $name {
            /// The id of these bytes.
            pub fn of(bytes: &[u8]) -> Self {
                Self(sha256(bytes))
            }

            /// The id whose digest is `digest`.
            pub fn from_digest(digest: Digest32) -> Self {
                Self(digest)
            }

            /// The SHA-256 digest.
            pub fn digest(&self) -> &Digest32 {
                &self.0
            }

            /// As a `cid::Cid`.
            pub fn to_cid(&self) -> Cid {
                cid_of($codec, self.0)
            }

            /// The binary CID, as used for DHT keys.
            pub fn to_bytes(&self) -> Vec<u8> {
                self.to_cid().to_bytes()
            }

            /// `sha256:<hex>`, the OCI spelling.
            pub fn to_sha256(&self) -> String {
                format!("sha256:{}", hex::encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = ContentIdError;
            /// Accepts a CID string or `sha256:<hex>`.
            fn from_str(s: &str) -> Result<Self, ContentIdError> {
                if let Some(h) = s.strip_prefix("sha256:") {
                    let mut d = [0u8; 32];
                    hex::decode_to_slice(h, &mut d)
                        .map_err(|_| ContentIdError::Unparsable(s.to_string()))?;
                    return Ok(Self(d));
                }
                let cid =
                    Cid::try_from(s).map_err(|_| ContentIdError::Unparsable(s.to_string()))?;
                digest_of(&cid, $codec)
                    .map(Self)
                    .ok_or_else(|| ContentIdError::WrongKind(s.to_string()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.to_cid())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.to_cid())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    let b = serde_bytes::ByteBuf::deserialize(d)?;
                    let digest: Digest32 = b
                        .as_slice()
                        .try_into()
                        .map_err(|_| serde::de::Error::invalid_length(b.len(), &"32 bytes"))?;
                    Ok(Self(digest))
                }
            }
        }
    };
}

cid_newtype!(
    ContentId,
    RAW_CODEC,
    "The id of a blob: CIDv1, raw codec, sha2-256 of its bytes."
);
cid_newtype!(
    RecordId,
    CBOR_CODEC,
    "The id of a signed record: CIDv1, cbor codec, sha2-256 of its envelope bytes."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_and_sha256_name_the_same_bytes() {
        let id = ContentId::of(b"hello");
        let s = id.to_string();
        assert_eq!(
            s,
            "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        );
        assert_eq!(s.parse::<ContentId>().unwrap(), id);
        let oci = id.to_sha256();
        assert_eq!(
            oci,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(oci.parse::<ContentId>().unwrap(), id);
    }

    #[test]
    fn rejects_other_cids_and_garbage() {
        let rec = RecordId::of(b"x").to_string();
        assert!(matches!(
            rec.parse::<ContentId>(),
            Err(ContentIdError::WrongKind(_))
        ));
        for bad in ["", "sha256:", "sha256:zz", "bafk", "sha256:00"] {
            assert!(bad.parse::<ContentId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_roundtrip_binary_and_text() {
        let id = ContentId::of(b"abc");
        let mut buf = Vec::new();
        ciborium::into_writer(&id, &mut buf).unwrap();
        assert_eq!(buf.len(), 34, "a byte string of 32");
        let back: ContentId = ciborium::from_reader(buf.as_slice()).unwrap();
        assert_eq!(back, id);
    }
}
