//! The dtle 2.x HTTP API: [`routes`] (paths and methods), [`handlers`] (calls on the
//! orchestrator), [`models`] (response shapes), [`query`] (query strings, blocking reads),
//! [`body`] (a job's body), [`metrics`] (Prometheus), [`error`] (statuses), [`encrypt`] (passwords sealed for
//! job files) and [`openapi`] (the served contract of all three APIs). [`seatunnel`] serves SeaTunnel Zeta's REST API and
//! [`flink`] Flink's monitoring REST API over the same jobs.

pub mod body;
pub mod encrypt;
pub mod error;
pub mod flink;
pub mod handlers;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod seatunnel;
