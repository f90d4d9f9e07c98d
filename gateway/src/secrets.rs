//! Job passwords at rest: sealed with ChaCha20-Poly1305 under the agent's key.
//!
//! # Form
//! A sealed value is `dtle:sealed:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`: a fresh
//! random 96-bit nonce per value, the key id being the first 8 hex digits of the key's SHA-256
//! (it names the key without revealing it). The same form is what `POST /encrypt-config` answers
//! and what every job endpoint accepts in place of a password.
//!
//! # Keys
//! The key is 32 random bytes, in base64: `DTLE_SECRET_KEY` when the agent's environment has
//! it, else `<state_dir>/secret.key`, created (mode 0600) on first start. Keys that opened
//! earlier values may be kept for opening only: `DTLE_SECRET_KEY_PREVIOUS` (comma-separated) or
//! `<state_dir>/secret.key.previous`. Rotating is: make the current key a previous one, give a
//! new current one, restart the agent; every job sealed under a previous key is sealed again
//! under the current one as it is loaded.
//!
//! # Invariant
//! Nothing is written to the state folder with a password in clear: the store seals every
//! password of a job before it serialises it, and a value already sealed is kept as it is (a
//! job whose key is missing is kept sealed, never sealed twice).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};
use std::path::Path;

const PREFIX: &str = "dtle:sealed:v1:";
/// The key file in the state folder.
pub const KEY_FILE: &str = "secret.key";
/// Keys that may still open values, in the state folder.
pub const PREVIOUS_KEY_FILE: &str = "secret.key.previous";

/// Why a key or a sealed value cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// A key that is not 32 bytes of base64.
    #[error("{source_name} is not a key: give 32 random bytes in base64 (`head -c 32 /dev/urandom | base64`)")]
    BadKey { source_name: String },
    /// The key file cannot be read or created.
    #[error("the key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    /// Sealed under a key this agent does not have.
    #[error(
        "sealed with key {key_id}, which this agent does not have (its key is {current}): start \
         the agent with the key that sealed it (DTLE_SECRET_KEY, or the secret.key of the agent \
         that wrote it; a former key may be given as DTLE_SECRET_KEY_PREVIOUS)"
    )]
    UnknownKey { key_id: String, current: String },
    /// Not a sealed value this agent could have written, or altered since.
    #[error(
        "a sealed value is damaged or was altered: seal the password again (POST /encrypt-config)"
    )]
    Damaged,
}

struct SealKey {
    id: String,
    cipher: ChaCha20Poly1305,
}

impl SealKey {
    fn new(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            id,
            cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)),
        }
    }
}

/// The current key and those that may still open values.
pub struct KeyRing {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("KeyRing")
            .field("current", &self.current.id)
            .field("previous", &previous)
            .finish()
    }
}

/// A key from its base64 text; `source_name` says where it came from, for the error.
///
/// # Errors
/// Not 32 bytes of base64.
pub fn parse_key(text: &str, source_name: &str) -> Result<[u8; 32], SecretError> {
    let bad = || SecretError::BadKey {
        source_name: source_name.to_owned(),
    };
    let bytes = STANDARD.decode(text.trim()).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// Whether `text` is a sealed value.
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

impl KeyRing {
    /// From keys given explicitly.
    pub fn from_keys(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            current: SealKey::new(current),
            previous: previous.iter().map(SealKey::new).collect(),
        }
    }

    /// The state folder's key (created when there is none) and its previous ones.
    ///
    /// # Errors
    /// A key file that cannot be read, created or parsed.
    pub fn for_state_dir(state_dir: &Path) -> Result<Self, SecretError> {
        let path = state_dir.join(KEY_FILE);
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(&text, &path.display().to_string())?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => create_key_file(&path)?,
            Err(err) => {
                return Err(SecretError::KeyFile {
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })
            }
        };
        let previous = previous_in_state_dir(state_dir)?;
        Ok(Self::from_keys(&current, &previous))
    }

    /// `current` (e.g. from the environment) with the state folder's previous keys and
    /// `previous`.
    ///
    /// # Errors
    /// A previous-key file that cannot be parsed.
    pub fn with_current(
        current: &[u8; 32],
        previous: &[[u8; 32]],
        state_dir: &Path,
    ) -> Result<Self, SecretError> {
        let mut all = previous.to_vec();
        all.extend(previous_in_state_dir(state_dir)?);
        Ok(Self::from_keys(current, &all))
    }

    /// The current key's id.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// `plain` sealed under the current key; a value already sealed is returned as it is.
    pub fn seal(&self, plain: &str) -> String {
        if is_sealed(plain) {
            return plain.to_owned();
        }
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a valid key and nonce cannot fail for inputs of this size.
        let sealed = self
            .current
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}:{}", self.current.id, STANDARD.encode(bytes))
    }

    /// The plain text of a sealed value (a value not sealed is returned as it is), and whether
    /// it was sealed under a previous key (so it should be sealed again).
    ///
    /// # Errors
    /// Sealed under an unknown key, or damaged.
    pub fn open(&self, text: &str) -> Result<(String, bool), SecretError> {
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return Ok((text.to_owned(), false));
        };
        let (key_id, data) = rest.split_once(':').ok_or(SecretError::Damaged)?;
        let (key, stale) = if key_id == self.current.id {
            (&self.current, false)
        } else {
            let key = self
                .previous
                .iter()
                .find(|k| k.id == key_id)
                .ok_or_else(|| SecretError::UnknownKey {
                    key_id: key_id.to_owned(),
                    current: self.current.id.clone(),
                })?;
            (key, true)
        };
        let bytes = STANDARD.decode(data).map_err(|_| SecretError::Damaged)?;
        if bytes.len() < 12 {
            return Err(SecretError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| SecretError::Damaged)?;
        let plain = String::from_utf8(plain).map_err(|_| SecretError::Damaged)?;
        Ok((plain, stale))
    }

    /// Seals every password of `spec`.
    pub fn seal_job(&self, spec: &mut jobs::JobSpec) {
        for password in spec.passwords_mut() {
            *password = jobs::Password::new(self.seal(password.expose()));
        }
    }

    /// Opens every sealed password of `spec`; answers whether one was sealed under a previous
    /// key.
    ///
    /// # Errors
    /// The first password that cannot be opened.
    pub fn open_job(&self, spec: &mut jobs::JobSpec) -> Result<bool, SecretError> {
        let mut stale = false;
        for password in spec.passwords_mut() {
            let (plain, was_stale) = self.open(password.expose())?;
            stale |= was_stale;
            *password = jobs::Password::new(plain);
        }
        Ok(stale)
    }
}

fn previous_in_state_dir(state_dir: &Path) -> Result<Vec<[u8; 32]>, SecretError> {
    let path = state_dir.join(PREVIOUS_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_key(l, &path.display().to_string()))
            .collect(),
        Err(_) => Ok(Vec::new()),
    }
}

fn create_key_file(path: &Path) -> Result<[u8; 32], SecretError> {
    let failed = |err: std::io::Error| SecretError::KeyFile {
        path: path.display().to_string(),
        reason: err.to_string(),
    };
    let key: [u8; 32] = ChaCha20Poly1305::generate_key(&mut OsRng).into();
    let mut text = STANDARD.encode(key);
    text.push('\n');
    crate::orchestrator::state_file::write_private(path, text.as_bytes()).map_err(failed)?;
    tracing::info!(file = %path.display(), "created the key that seals job passwords at rest");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_refuse_other_keys_and_tampering() {
        let ring = KeyRing::from_keys(&[7; 32], &[]);
        let sealed = ring.seal("s3cret");
        assert!(is_sealed(&sealed) && !sealed.contains("s3cret"));
        assert_ne!(sealed, ring.seal("s3cret"), "a fresh nonce per value");
        assert_eq!(ring.seal(&sealed), sealed, "never sealed twice");
        assert_eq!(ring.open(&sealed), Ok(("s3cret".to_owned(), false)));
        assert_eq!(ring.open("plain"), Ok(("plain".to_owned(), false)));
        let other = KeyRing::from_keys(&[8; 32], &[]);
        assert!(matches!(
            other.open(&sealed),
            Err(SecretError::UnknownKey { .. })
        ));
        let rotated = KeyRing::from_keys(&[8; 32], &[[7; 32]]);
        assert_eq!(rotated.open(&sealed), Ok(("s3cret".to_owned(), true)));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(ring.open(&tampered), Err(SecretError::Damaged));
        assert!(!format!("{ring:?}").contains("7, 7"));
    }

    #[test]
    fn the_state_folder_key_is_created_private_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = KeyRing::for_state_dir(dir.path()).expect("created");
        let again = KeyRing::for_state_dir(dir.path()).expect("read");
        assert_eq!(first.key_id(), again.key_id());
        let sealed = first.seal("x");
        assert_eq!(again.open(&sealed).expect("same key").0, "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            parse_key("c2hvcnQ=", "DTLE_SECRET_KEY"),
            Err(SecretError::BadKey { .. })
        ));
    }
}
