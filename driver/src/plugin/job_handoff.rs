//! A Dest task started without its target gets the job from its Src task, over NATS.
//!
//! dtle 4's sample Nomad job gives the Src task the whole job (`SrcConnectionConfig`,
//! `DestConnectionConfig`, `ReplicateDoDb`, ...) and the Dest task only `DestType = "mysql"`;
//! dtle's Dest waited for the Src to publish the rest in Consul. Here the Src publishes nothing
//! anywhere: it answers requests on `dtle.<job>.job` ([`Subjects::job`]) with the job JSON it
//! runs, for as long as it runs (paused too), and only when its own config is that whole job
//! (a config naming one server carries no target to hand over).
//!
//! The Dest asks every [`ASK_EVERY`] until an answer comes or the task is stopped, showing the
//! wait as its stage. The answer goes through the job model like any job; one for another job
//! name, or one the job model refuses, is a definite error (the job itself is wrong, a retry
//! would not help). The Dest's `driver_state` keeps only that it waits for its Src, so a
//! recovered Dest asks again; what the target has committed is on the target, as always.
//!
//! The job carries the servers' passwords: whoever may subscribe to the job's subjects on the
//! NATS server can read them, as it can read the replicated rows. Give each job a NATS user of
//! its own (docs/security.md, "NATS"): the request and its answer stay on `dtle.<job>.job` and
//! the job's inboxes (`_INBOX.dtle.<job>.`).

use crate::error::{DefiniteCause, TaskError};
use crate::stats::TaskStats;
use crate::transport::connection::{self, ConnectFailure, Endpoint};
use crate::transport::protocol::Subjects;
use crate::transport::security::NatsSecurity;
use futures::StreamExt;
use jobs::JobSpec;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a waiting Dest asks again.
pub const ASK_EVERY: Duration = Duration::from_secs(2);

/// How long one request waits for the answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The stage a waiting Dest shows.
pub const WAITING_STAGE: &str =
    "waiting for the Src task to hand over the job (the Dest task's config names no target)";

/// Serves `job` (the Src's whole job JSON) on the job's subject until `cancel` fires.
pub async fn serve(
    nats_url: String,
    security: NatsSecurity,
    job_name: String,
    job: Value,
    stats: Arc<TaskStats>,
    cancel: CancellationToken,
) {
    let body = match serde_json::to_vec(&job) {
        Ok(body) => bytes::Bytes::from(body),
        Err(err) => {
            tracing::error!(%err, "cannot encode the job for the Dest task");
            return;
        }
    };
    let subject = Subjects::for_job(&job_name).job;
    let name = format!("dtle {job_name} Src job handoff");
    let served = async {
        let endpoint = Endpoint {
            url: &nats_url,
            security: &security,
            job: &job_name,
            name: &name,
        };
        let nats = connection::connect(&endpoint, stats, &cancel).await?;
        let mut requests = nats.client.subscribe(subject.clone()).await?;
        tracing::debug!(%subject, "handing the job over to a Dest task that asks");
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                if let Err(err) = nats.client.publish(reply, body.clone()).await {
                    tracing::warn!(%err, "cannot answer a Dest task's request for the job");
                }
            }
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        result = served => {
            if let Err(err) = result {
                tracing::warn!(%err, %subject, "the job handoff to the Dest task stopped");
            }
        }
    }
}

/// Asks the Src for the job until it answers (`Some`) or `cancel` fires (`None`).
///
/// # Errors
/// A definite error for an answer that is not this job or that the job model refuses; a
/// transient one when NATS cannot be used at all.
pub async fn fetch(
    nats_url: &str,
    security: &NatsSecurity,
    job_name: &str,
    stats: Arc<TaskStats>,
    cancel: &CancellationToken,
) -> Result<Option<JobSpec>, TaskError> {
    stats.set_stage(WAITING_STAGE);
    let name = format!("dtle {job_name} Dest");
    let endpoint = Endpoint {
        url: nats_url,
        security,
        job: job_name,
        name: &name,
    };
    let nats = match connection::connect(&endpoint, stats, cancel).await {
        Ok(nats) => nats,
        Err(ConnectFailure::Cancelled) => return Ok(None),
        Err(ConnectFailure::Refused(why)) => {
            return Err(TaskError::definite(
                format!("connecting to NATS at {nats_url}"),
                DefiniteCause::BadConfig(why),
            ))
        }
    };
    let subject = Subjects::for_job(job_name).job;
    loop {
        let asked = tokio::time::timeout(
            ANSWER_WITHIN,
            nats.client.request(subject.clone(), bytes::Bytes::new()),
        );
        let answer = tokio::select! {
            () = cancel.cancelled() => return Ok(None),
            why = nats.refusal() => return Err(TaskError::definite(
                "asking the Src task for the job over NATS",
                DefiniteCause::BadConfig(why),
            )),
            answer = asked => answer,
        };
        match answer {
            Ok(Ok(message)) => return accept(job_name, &message.payload).map(Some),
            Ok(Err(err)) => tracing::debug!(%err, "no Src task answered yet"),
            Err(_) => tracing::debug!("no Src task answered within {ANSWER_WITHIN:?}"),
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(None),
            () = tokio::time::sleep(ASK_EVERY) => {}
        }
    }
}

/// The job a Src handed over, checked.
fn accept(job_name: &str, payload: &[u8]) -> Result<JobSpec, TaskError> {
    let refuse = |why: String| {
        TaskError::definite(
            "the job handed over by the Src task",
            DefiniteCause::BadConfig(why),
        )
    };
    let job: Value =
        serde_json::from_slice(payload).map_err(|e| refuse(format!("not a job JSON: {e}")))?;
    let spec = jobs::from_json_value(&job)
        .map_err(|e| refuse(e.to_string()))?
        .spec;
    if spec.name != job_name {
        return Err(refuse(format!(
            "it is job {:?}, this Dest task belongs to job {job_name:?}",
            spec.name
        )));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> Value {
        let server =
            |port: u16| serde_json::json!({"Host": "127.0.0.1", "Port": port, "User": "u"});
        serde_json::json!({
            "Name": name,
            "Tasks": [
                {"Type": "Src", "Config": {
                    "SrcConnectionConfig": server(3307),
                    "DestConnectionConfig": server(3308),
                    "ReplicateDoDb": [{"TableSchema": "db1"}],
                }},
                {"Type": "Dest", "Config": {}},
            ],
        })
    }

    #[test]
    fn accepts_its_own_job_and_refuses_any_other() {
        let body = serde_json::to_vec(&job("j1")).unwrap();
        let spec = accept("j1", &body).expect("its job");
        assert_eq!(spec.dest.connection.port, 3308);
        let err = accept("j2", &body).expect_err("another job");
        assert!(!err.is_transient());
        assert!(err.to_string().contains("j2"), "{err}");
        let err = accept("j1", b"{not json").expect_err("garbage");
        assert!(err.to_string().contains("not a job JSON"), "{err}");
    }
}
