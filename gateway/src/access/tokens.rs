//! API tokens: names, roles, and the constant-time lookup.
//!
//! A presented token is hashed (SHA-256) and compared with every configured token's hash with
//! [`subtle`]'s constant-time equality, all of them every time: neither the time taken nor an
//! early exit tells how much of a guess was right, or which token it was close to.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `GET` (and `HEAD`) requests only.
    Read,
    /// Every request.
    Admin,
}

impl Role {
    /// `read` or `admin`, as configured.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "read" | "read-only" | "readonly" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// Why a token setting cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Too short to resist guessing.
    #[error("the API token {name:?} is {len} characters long: use at least 16 (e.g. `openssl rand -hex 32`)")]
    TooShort { name: String, len: usize },
    /// Two tokens with the same name make the audit log ambiguous.
    #[error("two API tokens are named {0:?}: give each its own name")]
    DuplicateName(String),
    /// Two names for one secret: which one is the caller?
    #[error("the API tokens {0:?} and {1:?} have the same value: give each its own")]
    DuplicateValue(String, String),
    /// Not `read` or `admin`.
    #[error("the API token {name:?} has role {role:?}: use \"read\" or \"admin\"")]
    UnknownRole { name: String, role: String },
}

struct Token {
    name: String,
    role: Role,
    digest: [u8; 32],
}

/// The configured tokens.
#[derive(Default)]
pub struct AccessPolicy {
    tokens: Vec<Token>,
}

impl std::fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<(&str, Role)> = self
            .tokens
            .iter()
            .map(|t| (t.name.as_str(), t.role))
            .collect();
        f.debug_struct("AccessPolicy")
            .field("tokens", &names)
            .finish()
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl AccessPolicy {
    /// No token: the API is open.
    pub fn open() -> Self {
        Self::default()
    }

    /// Adds a token.
    ///
    /// # Errors
    /// A token shorter than 16 characters, or a name or value given twice.
    pub fn with_token(mut self, name: &str, role: Role, secret: &str) -> Result<Self, TokenError> {
        if secret.chars().count() < 16 {
            return Err(TokenError::TooShort {
                name: name.to_owned(),
                len: secret.chars().count(),
            });
        }
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(TokenError::DuplicateName(name.to_owned()));
        }
        let digest = digest(secret);
        if let Some(same) = self
            .tokens
            .iter()
            .find(|t| bool::from(t.digest.ct_eq(&digest)))
        {
            return Err(TokenError::DuplicateValue(
                same.name.clone(),
                name.to_owned(),
            ));
        }
        self.tokens.push(Token {
            name: name.to_owned(),
            role,
            digest,
        });
        Ok(self)
    }

    /// Adds the unnamed pair a deployment gives in its environment (`DTLE_ADMIN_TOKEN`,
    /// `DTLE_READ_TOKEN`), named `admin` and `read`; an absent or empty one is skipped.
    ///
    /// # Errors
    /// As [`AccessPolicy::with_token`].
    pub fn with_admin_and_read(
        self,
        admin: Option<&str>,
        read: Option<&str>,
    ) -> Result<Self, TokenError> {
        let mut policy = self;
        for (name, role, secret) in [("admin", Role::Admin, admin), ("read", Role::Read, read)] {
            if let Some(secret) = secret.filter(|s| !s.is_empty()) {
                policy = policy.with_token(name, role, secret)?;
            }
        }
        Ok(policy)
    }

    /// Whether any token is configured (else the API is open).
    pub fn is_enforced(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The name and role of the token `presented`, if it is one of ours.
    pub fn identify(&self, presented: &str) -> Option<(&str, Role)> {
        let digest = digest(presented);
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some((token.name.as_str(), token.role));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef-admin";
    const R: &str = "0123456789abcdef-read";

    #[test]
    fn tokens_are_identified_by_value_and_refused_when_weak_or_repeated() {
        let policy = AccessPolicy::open()
            .with_token("ops", Role::Admin, A)
            .and_then(|p| p.with_token("grafana", Role::Read, R))
            .expect("valid");
        assert!(policy.is_enforced());
        assert_eq!(policy.identify(A), Some(("ops", Role::Admin)));
        assert_eq!(policy.identify(R), Some(("grafana", Role::Read)));
        assert_eq!(policy.identify("0123456789abcdef-admiN"), None);
        assert_eq!(policy.identify(""), None);
        assert!(!format!("{policy:?}").contains(A), "no secret in Debug");
        let short = AccessPolicy::open().with_token("x", Role::Admin, "short");
        assert!(matches!(short, Err(TokenError::TooShort { len: 5, .. })));
        let twice = AccessPolicy::open()
            .with_token("a", Role::Admin, A)
            .and_then(|p| p.with_token("b", Role::Read, A));
        assert!(matches!(twice, Err(TokenError::DuplicateValue(..))));
        assert_eq!(Role::parse("READ"), Some(Role::Read));
        assert_eq!(Role::parse("root"), None);
    }
}
