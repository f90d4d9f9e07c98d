//! The dtle 2.x HTTP API: [`routes`] (paths and methods), [`handlers`] (calls on the
//! orchestrator), [`models`] (response shapes) and [`error`] (statuses).

pub mod error;
pub mod handlers;
pub mod models;
pub mod routes;
