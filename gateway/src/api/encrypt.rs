//! `POST /encrypt-config` (SeaTunnel's endpoint, also under `/hazelcast/rest/maps/`): a job
//! with its passwords sealed under the agent's key ([`crate::secrets`]), to be kept in files and
//! repositories instead of the clear ones. Every job endpoint accepts the sealed form in place
//! of a password; the agent opens it when the job is registered.
//!
//! The body is any JSON job (dtle 2.x, Nomad JSON, a SeaTunnel config): every string under a
//! key named `password` (any case) is sealed, wherever it is; `*` (dtle's mask), empty strings
//! and values already sealed are left as they are. Everything else comes back unchanged.

use super::error::{ApiError, BodyFailure, OrchestratorFailure};
use super::handlers::Shared;
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply as _;

/// `POST /encrypt-config`.
#[utoipa::path(
    post,
    path = "/encrypt-config",
    tag = "dtle",
    request_body(
        description = "A job (dtle 2.x JSON, Nomad JSON or a SeaTunnel config as JSON)",
        content((Object = "application/json")),
    ),
    responses(
        (status = 200, description = "The same job, each password sealed (`dtle:sealed:v1:...`)", body = Object),
        OrchestratorFailure,
        BodyFailure,
    ),
)]
pub async fn encrypt_config(
    orchestrator: Shared,
    body: Result<bytes::Bytes, ApiError>,
) -> Response {
    let answer = async {
        let body = body?;
        let mut job: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not a JSON job: {e}"),
            )
        })?;
        if !job.is_object() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the body is not a JSON object: send a job",
            ));
        }
        seal_passwords(&mut job, &|plain| orchestrator.seal_secret(plain))?;
        Ok(warp::reply::json(&job).into_response())
    }
    .await;
    answer.unwrap_or_else(ApiError::into_response)
}

/// Seals, with `seal`, every password string in `value`.
fn seal_passwords<E>(
    value: &mut Value,
    seal: &dyn Fn(&str) -> Result<String, E>,
) -> Result<(), ApiError>
where
    ApiError: From<E>,
{
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Value::String(text) if key.eq_ignore_ascii_case("password") => {
                        let keep = text.is_empty()
                            || text == jobs::Password::MASK
                            || crate::secrets::is_sealed(text);
                        if !keep {
                            *text = seal(text)?;
                        }
                    }
                    other => seal_passwords(other, seal)?,
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                seal_passwords(item, seal)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::OrchestratorError;
    use serde_json::json;

    #[test]
    fn every_password_is_sealed_wherever_it_is_and_nothing_else() {
        let mut job = json!({
            "Name": "j", "Password": "top",
            "Tasks": [{"Config": {"ConnectionConfig": {"User": "u", "Password": "p1"}}},
                      {"Config": {"ConnectionConfig": {"Password": "*"}}}],
            "source": [{"plugin_name": "MySQL-CDC", "password": "p2", "username": "u"}],
            "sink": [{"password": ""}]
        });
        let seal = |plain: &str| Ok::<_, OrchestratorError>(format!("dtle:sealed:v1:k:{plain}!"));
        seal_passwords(&mut job, &seal).expect("sealed");
        assert_eq!(job["Password"], "dtle:sealed:v1:k:top!");
        assert_eq!(
            job["Tasks"][0]["Config"]["ConnectionConfig"]["Password"],
            "dtle:sealed:v1:k:p1!"
        );
        assert_eq!(
            job["Tasks"][1]["Config"]["ConnectionConfig"]["Password"],
            "*"
        );
        assert_eq!(job["source"][0]["password"], "dtle:sealed:v1:k:p2!");
        assert_eq!(job["source"][0]["username"], "u");
        assert_eq!(job["sink"][0]["password"], "");
        let mut again = job.clone();
        seal_passwords(&mut again, &seal).expect("sealed");
        assert_eq!(again, job, "sealed values are not sealed twice");
    }
}
