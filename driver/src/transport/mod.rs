//! NATS between the Src and Dest tasks: the wire format ([`codec`]), the conversation
//! ([`protocol`]), the extractor's end ([`sender`], with its [`ledger`] of what the applier has
//! executed) and the applier's end ([`receiver`]).

pub mod codec;
pub mod connection;
pub mod ledger;
pub mod protocol;
pub mod receiver;
pub mod sender;
