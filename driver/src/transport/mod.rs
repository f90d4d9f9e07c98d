//! NATS between the Src and Dest tasks: the wire format ([`codec`]), the conversation
//! ([`protocol`]), the extractor's end ([`sender`], with its [`ledger`] of what the applier has
//! executed) and the applier's end ([`receiver`]); who the tasks are to nats-server and how they
//! trust it ([`security`], used by [`connection`]).

pub mod codec;
pub mod connection;
pub mod ledger;
pub mod protocol;
pub mod receiver;
pub mod security;
pub mod sender;
