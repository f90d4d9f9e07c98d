//! The Driver's three server streams: Fingerprint, TaskStats and TaskEvents.
//!
//! - Fingerprint: the first message at once, then one every [`FINGERPRINT_EVERY`]; it never ends
//!   while the plugin runs (an ended stream makes the client re-dispense the plugin).
//! - TaskStats: one message at once, then one every `collection_interval` (1 s when unset), until
//!   the task is no longer in the registry (destroyed).
//! - TaskEvents: every task start, stop and failure from the moment the stream opened; stays
//!   open while the plugin runs (events lost by a slow reader are skipped, not fatal).

use super::api::API_ADDR_ATTRIBUTE;
use super::base::PluginState;
use super::proto::drivers::{
    fingerprint_response::HealthState, DriverTaskEvent, FingerprintResponse, TaskStats,
    TaskStatsResponse,
};
use super::proto::structs::{attribute::Value as AttrValue, Attribute};
use super::registry::Registry;
use super::usage;
use futures::Stream;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;

/// A boxed stream of gRPC messages.
pub type GrpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How often Fingerprint repeats itself (dtle's Go driver: 30 s).
pub const FINGERPRINT_EVERY: Duration = Duration::from_secs(30);

/// The fingerprint: healthy, with `driver.dtle`, `driver.dtle.version` and, when the plugin serves
/// its stats API, [`API_ADDR_ATTRIBUTE`].
pub fn fingerprint_message(api_addr: Option<SocketAddr>) -> FingerprintResponse {
    let attr = |value| Attribute {
        value: Some(value),
        unit: String::new(),
    };
    let mut attributes: HashMap<String, Attribute> = [
        ("driver.dtle".to_owned(), attr(AttrValue::BoolVal(true))),
        (
            "driver.dtle.version".to_owned(),
            attr(AttrValue::StringVal(env!("CARGO_PKG_VERSION").to_owned())),
        ),
    ]
    .into_iter()
    .collect();
    if let Some(addr) = api_addr {
        attributes.insert(
            API_ADDR_ATTRIBUTE.to_owned(),
            attr(AttrValue::StringVal(addr.to_string())),
        );
    }
    FingerprintResponse {
        attributes,
        health: HealthState::Healthy.into(),
        health_description: "dtle runs Src and Dest tasks in this plugin".to_owned(),
    }
}

/// The Fingerprint stream; each message reads the settings afresh.
pub fn fingerprint(state: Arc<PluginState>) -> GrpcStream<FingerprintResponse> {
    Box::pin(futures::stream::unfold(true, move |first| {
        let state = Arc::clone(&state);
        async move {
            if !first {
                tokio::time::sleep(FINGERPRINT_EVERY).await;
            }
            let api_addr = state.settings().and_then(|s| s.api_serving);
            Some((Ok(fingerprint_message(api_addr)), false))
        }
    }))
}

/// The TaskStats stream of one task.
pub fn task_stats(
    registry: Arc<Registry>,
    id: String,
    interval: Duration,
) -> GrpcStream<TaskStatsResponse> {
    let state = (registry, id, None, true);
    Box::pin(futures::stream::unfold(
        state,
        move |(registry, id, previous, first)| async move {
            if !first {
                tokio::time::sleep(interval).await;
            }
            registry.get(&id)?;
            let (usage, next) = usage::sample(previous);
            let message = TaskStatsResponse {
                stats: Some(TaskStats {
                    id: id.clone(),
                    timestamp: Some(SystemTime::now().into()),
                    agg_resource_usage: Some(usage),
                    resource_usage_by_pid: Default::default(),
                }),
            };
            Some((Ok(message), (registry, id, next, false)))
        },
    ))
}

/// The TaskEvents stream.
pub fn task_events(registry: &Registry) -> GrpcStream<DriverTaskEvent> {
    let rx = registry.events();
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    let message = DriverTaskEvent {
                        task_id: event.task_id,
                        alloc_id: event.alloc_id,
                        task_name: event.task_name,
                        timestamp: Some(event.at.into()),
                        message: event.message,
                        annotations: Default::default(),
                    };
                    return Some((Ok(message), rx));
                }
                Err(RecvError::Lagged(_)) => continue,
                // The registry lives as long as the plugin; should it go, stay open and silent.
                Err(RecvError::Closed) => futures::future::pending::<()>().await,
            }
        }
    }))
}
