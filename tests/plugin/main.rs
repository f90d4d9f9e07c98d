//! Plugin mode through the protocol a Nomad client speaks: `dtle` started with go-plugin's
//! environment, its handshake line read from stdout, then gRPC over TCP (health, BasePlugin,
//! GRPCController, Driver). The task tests replicate through the test bed (source, target, NATS);
//! the others need no server.

#[path = "../support/mod.rs"]
mod support;

mod base;
mod harness;
mod recovery;
mod tasks;
