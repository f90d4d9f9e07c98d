//! Who may call the API, and the record of what they changed.
//!
//! - [`tokens`]: bearer tokens, each with a name and a role: `read` (every `GET`) or `admin`
//!   (everything). Without any token configured the API is open, and the agent only listens on
//!   loopback (enforced where it binds, `dtle agent`).
//! - [`gate`]: the warp filter in front of every route: 401 for a missing or unknown token,
//!   403 for a read-only token on a write, both as the same short JSON error that tells nothing
//!   that would help guessing; tokens are compared in constant time.
//! - [`audit`]: every call that may change state (any method but `GET`/`HEAD`), allowed or not,
//!   is written to the audit log with the caller's token name, the method, the path, the job it
//!   concerns and the status: never a body, a header or a query value.

pub mod audit;
pub mod gate;
pub mod tokens;

pub use audit::AuditLog;
pub use gate::guarded;
pub use tokens::{AccessPolicy, Role, TokenError};
