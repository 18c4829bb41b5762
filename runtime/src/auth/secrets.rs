//! Passwords and tokens.
//!
//! Passwords are hashed with **argon2id, m = 19 MiB (19,456 KiB), t = 2, p = 1**, the OWASP
//! password-storage recommendation for argon2id, with a 16-byte random salt, stored in PHC form
//! (`$argon2id$v=19$m=19456,t=2,p=1$…`). Hashing takes tens of milliseconds on purpose, so it runs
//! on the blocking pool. Tokens (sessions, API keys, invitation and reset links) are 32 random
//! bytes — 256 bits, far beyond guessing — so a plain SHA-256 of them is what is stored and
//! looked up; a slow hash would add nothing but latency to every request.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use sha2::{Digest, Sha256};

/// argon2id memory cost in KiB.
pub const ARGON2_M_KIB: u32 = 19_456;
/// argon2id iterations.
pub const ARGON2_T: u32 = 2;
/// argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// Shortest and longest accepted password, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=200;

fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .expect("the argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must have 10 to 200 characters")]
    Length,
    #[error("the password must not be one character repeated")]
    Repeated,
}

/// Refuses passwords that are too short, too long, or one character over and over.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if !PASSWORD_CHARS.contains(&n) {
        return Err(PasswordError::Length);
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(PasswordError::Repeated);
    }
    Ok(())
}

/// The argon2id PHC string of `password` (on the blocking pool).
pub async fn hash_password(password: String) -> String {
    tokio::task::spawn_blocking(move || hash_password_now(&password))
        .await
        .expect("password hashing does not panic")
}

fn hash_password_now(password: &str) -> String {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes make a valid salt");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hashing with valid parameters succeeds")
        .to_string()
}

/// Whether `password` matches the PHC string `hash` (on the blocking pool). A malformed hash
/// never matches.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash to verify against when the account does not exist, so that signing in with an unknown
/// email takes as long as with a wrong password (no account enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password_now("not a password of anyone's"))
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

/// What a token is for; its prefix says so to people and secret scanners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    ApiKey,
    /// Invitation and password-reset links.
    Link,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "sbs_",
            TokenKind::ApiKey => "sbk_",
            TokenKind::Link => "sbl_",
        }
    }
}

/// A new random token: the prefix and 32 random bytes in URL-safe base64.
pub fn new_token(kind: TokenKind) -> String {
    format!(
        "{}{}",
        kind.prefix(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// The SHA-256 of a token, as stored.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal-length comparison that does not stop at the first difference (the one the webhooks
/// use).
pub use switchboard_channels::webhook::constant_time_eq;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_the_stated_argon2id_parameters_and_verify() {
        let hash = hash_password("correct horse battery".into()).await;
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery".into(), hash.clone()).await);
        assert!(!verify_password("correct horse battery!".into(), hash.clone()).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
        // The same password hashes differently every time (random salt).
        assert_ne!(hash, hash_password("correct horse battery".into()).await);
        assert!(!verify_password("anything".into(), dummy_hash().to_owned()).await);
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert_eq!(check_password("short"), Err(PasswordError::Length));
        assert_eq!(check_password("aaaaaaaaaaaa"), Err(PasswordError::Repeated));
        assert_eq!(check_password(&"x".repeat(201)), Err(PasswordError::Length));
        assert!(check_password("كلمة سر طويلة").is_ok());
        assert!(check_password("ten chars!").is_ok());
    }

    #[test]
    fn tokens_are_prefixed_random_and_digested() {
        let a = new_token(TokenKind::ApiKey);
        let b = new_token(TokenKind::ApiKey);
        assert!(a.starts_with("sbk_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_ne!(token_digest(&a), token_digest(&b));
        assert!(new_token(TokenKind::Session).starts_with("sbs_"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
