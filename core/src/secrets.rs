//! Secrets at rest: AES-256-GCM with the owning tenant's id as associated data.
//!
//! A credential sealed for tenant A cannot be opened as tenant B's, even by someone who copies
//! the ciphertext between rows: decryption fails. The 32-byte master key comes from
//! `SWITCHBOARD_MASTER_KEY` (64 hex digits) or a generated key file in the data directory.
//! Sealed form: a version byte, the 12-byte random nonce, then ciphertext and tag.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};

use crate::ids::TenantId;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be 64 hexadecimal digits (32 bytes)")]
    BadMasterKey,
    #[error("a stored secret could not be decrypted: it was sealed with another master key or for another tenant, or it is corrupt")]
    Undecryptable,
}

/// The platform's master key. `Debug` never prints it.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// Parses 64 hex digits (surrounding white space ignored).
    pub fn from_hex(hex: &str) -> Result<MasterKey, SecretError> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(SecretError::BadMasterKey);
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| SecretError::BadMasterKey)?;
        }
        Ok(MasterKey(bytes.into()))
    }

    /// Encrypts `plaintext` for `tenant`.
    pub fn seal(&self, tenant: TenantId, plaintext: &SecretString) -> Vec<u8> {
        let cipher = Aes256Gcm::new(&self.0);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = tenant.0.as_bytes();
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same tenant.
    pub fn open(&self, tenant: TenantId, sealed: &[u8]) -> Result<SecretString, SecretError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(SecretError::Undecryptable);
        }
        let cipher = Aes256Gcm::new(&self.0);
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        let plain = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: tenant.0.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        let text = String::from_utf8(plain).map_err(|_| SecretError::Undecryptable)?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn key(c: char) -> MasterKey {
        MasterKey::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn round_trip_is_bound_to_tenant_and_key() {
        let a = TenantId(Uuid::now_v7());
        let b = TenantId(Uuid::now_v7());
        let secret = SecretString::from("sk-test-123");
        let sealed = key('a').seal(a, &secret);
        assert!(!sealed.windows(11).any(|w| w == b"sk-test-123"));
        assert_eq!(
            key('a').open(a, &sealed).unwrap().expose_secret(),
            "sk-test-123"
        );
        assert!(key('a').open(b, &sealed).is_err(), "other tenant");
        assert!(key('b').open(a, &sealed).is_err(), "other key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key('a').open(a, &tampered).is_err(), "tampered");
        assert!(key('a').open(a, &sealed[..10]).is_err(), "truncated");
        // Fresh nonce every time.
        assert_ne!(key('a').seal(a, &secret), sealed);
    }

    #[test]
    fn master_key_must_be_64_hex_digits() {
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(MasterKey::from_hex(&"g".repeat(64)).is_err());
        assert!(MasterKey::from_hex(&"é".repeat(32)).is_err());
        assert!(MasterKey::from_hex(&format!(" {} \n", "0f".repeat(32))).is_ok());
        assert_eq!(format!("{:?}", key('a')), "MasterKey([REDACTED])");
    }
}
