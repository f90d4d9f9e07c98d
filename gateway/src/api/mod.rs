//! The dtle 2.x HTTP API: [`routes`] (paths and methods), [`handlers`] (calls on the
//! orchestrator), [`models`] (response shapes), [`metrics`] (Prometheus) and [`error`]
//! (statuses).

pub mod error;
pub mod handlers;
pub mod metrics;
pub mod models;
pub mod routes;
