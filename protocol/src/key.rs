//! Ed25519 keys that sign records.
//!
//! A public key is written `ed25519:<64 hex digits>` for people and is 32 raw bytes on
//! the wire. Key generation takes its randomness as an argument so that this crate
//! stays free of I/O; the node passes bytes from the OS, tests pass fixed seeds.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, Verifier};
use serde::{Deserialize, Serialize};

/// Why a string is not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a public key: expected ed25519:<64 hex digits> (see `ferry key show`)")]
pub struct KeyError(pub String);

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes. Any 32 bytes are accepted here; a key that is not a curve point
    /// simply never verifies a signature.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Verifies `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        // verify_strict refuses small-order keys and malleable signatures, so one
        // record has exactly one valid signature per key.
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        vk.verify_strict(message, &sig).is_ok() && vk.verify(message, &sig).is_ok()
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let h = s.strip_prefix("ed25519:").unwrap_or(s);
        let mut b = [0u8; 32];
        hex::decode_to_slice(h, &mut b).map_err(|_| KeyError(s.to_string()))?;
        Ok(Self(b))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            let b = serde_bytes::ByteBuf::deserialize(d)?;
            let k: [u8; 32] = b
                .as_slice()
                .try_into()
                .map_err(|_| serde::de::Error::invalid_length(b.len(), &"32 bytes"))?;
            Ok(Self(k))
        }
    }
}

/// A signing key pair.
#[derive(Clone)]
pub struct Keypair(ed25519_dalek::SigningKey);

impl Keypair {
    /// The key pair derived from a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The secret seed, for storing the key.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_text_roundtrip() {
        let k = Keypair::from_seed([7; 32]);
        let sig = k.sign(b"m");
        assert!(k.public().verify(b"m", &sig));
        assert!(!k.public().verify(b"n", &sig));
        let s = k.public().to_string();
        assert_eq!(s.parse::<PublicKey>().unwrap(), k.public());
        assert!("ed25519:zz".parse::<PublicKey>().is_err());
        assert!(!PublicKey::from_bytes([0; 32]).verify(b"m", &sig));
    }
}
