//! The dtle-rs HTTP gateway: serves the dtle 2.x API (`/v1/jobs`, `/v1/job/{ID}/allocations`,
//! `/v1/agent/allocation/{allocID}/stats`, ...) and translates it into calls on an orchestrator
//! (embedded single-node, or Nomad's HTTP API). It never touches MySQL or NATS itself.
//!
//! Jobs arrive as text and are parsed by [`jobs::parse_job`]. The API is being built (issue
//! "Gateway with an embedded orchestrator"); this crate holds no route yet.
