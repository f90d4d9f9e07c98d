//! The dtle-rs HTTP gateway: serves the dtle 2.x API (`/v1/jobs`, `/v1/job/{ID}/allocations`,
//! `/v1/agent/allocation/{allocID}/stats`, ...) and translates it into calls on an
//! [`orchestrator::Orchestrator`]. It never touches MySQL or NATS itself.
//!
//! - [`api`]: routes, handlers, the dtle response shapes and the one error-to-status mapping;
//! - [`access`]: API tokens, the gate in front of every route, and the audit log;
//! - [`orchestrator`]: the trait, the embedded single-node orchestrator, and the one in front of
//!   Nomad;
//! - [`secrets`]: job passwords sealed at rest, and the agent's keys;
//! - [`joblog`]: one log file per job, written by a tracing layer the agent installs.

pub mod access;
pub mod api;
pub mod joblog;
pub mod orchestrator;
pub mod secrets;
