//! BasePlugin: the service every Nomad plugin serves first. PluginInfo says what this plugin is,
//! ConfigSchema how to read its agent-level block, SetConfig hands over that block (and, on the
//! long-lived instance only, the client's own settings; only then is the stats API bound).

use super::api::ApiServer;
use super::config::{schema, PluginConfig};
use super::proto::base::{
    base_plugin_server::BasePlugin, ConfigSchemaRequest, ConfigSchemaResponse, PluginInfoRequest,
    PluginInfoResponse, PluginType, SetConfigRequest, SetConfigResponse,
};
use super::registry::Registry;
use super::Hooks;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::{Arc, RwLock};
use tonic::{Request, Response, Status};

/// The name Nomad knows the driver by (`driver = "dtle"` in a job).
pub const PLUGIN_NAME: &str = "dtle";

/// The Nomad plugin API version spoken; Nomad compares it as a version with its own.
pub const PLUGIN_API_VERSION: &str = "v0.1.0";

/// What SetConfig delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub config: PluginConfig,
    /// The client's loopback port range for plugin subsystems; absent on the agent's validation
    /// launch, which sends no nomad_config.
    pub client_ports: Option<RangeInclusive<u32>>,
    /// Where the stats API ([`super::api`]) listens: `api_addr`, once the long-lived instance
    /// bound it.
    pub api_serving: Option<SocketAddr>,
}

/// State shared by the plugin's services. Nothing is bound or started before SetConfig.
#[derive(Debug, Default)]
pub struct PluginState {
    settings: RwLock<Option<Settings>>,
}

impl PluginState {
    /// The settings of the last SetConfig, if any came.
    pub fn settings(&self) -> Option<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set(&self, settings: Settings) {
        *self
            .settings
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(settings);
    }
}

/// The BasePlugin service.
#[derive(Debug, Clone)]
pub struct BaseService {
    state: Arc<PluginState>,
    registry: Arc<Registry>,
    api: Arc<ApiServer>,
    hooks: Hooks,
}

impl BaseService {
    /// The service over the shared settings; SetConfig starts the stats API over `registry`.
    pub fn new(state: Arc<PluginState>, registry: Arc<Registry>, hooks: Hooks) -> Self {
        BaseService {
            state,
            registry,
            api: Arc::default(),
            hooks,
        }
    }
}

/// Whether `asked` names API version 0.1.0 (Nomad may echo it with or without the `v`).
fn api_version_supported(asked: &str) -> bool {
    asked.strip_prefix('v').unwrap_or(asked) == PLUGIN_API_VERSION.trim_start_matches('v')
}

#[tonic::async_trait]
impl BasePlugin for BaseService {
    async fn plugin_info(
        &self,
        _request: Request<PluginInfoRequest>,
    ) -> Result<Response<PluginInfoResponse>, Status> {
        Ok(Response::new(PluginInfoResponse {
            r#type: PluginType::Driver.into(),
            plugin_api_versions: vec![PLUGIN_API_VERSION.to_owned()],
            plugin_version: env!("CARGO_PKG_VERSION").to_owned(),
            name: PLUGIN_NAME.to_owned(),
        }))
    }

    async fn config_schema(
        &self,
        _request: Request<ConfigSchemaRequest>,
    ) -> Result<Response<ConfigSchemaResponse>, Status> {
        Ok(Response::new(ConfigSchemaResponse {
            spec: Some(schema()),
        }))
    }

    async fn set_config(
        &self,
        request: Request<SetConfigRequest>,
    ) -> Result<Response<SetConfigResponse>, Status> {
        let request = request.into_inner();
        if !api_version_supported(&request.plugin_api_version) {
            return Err(Status::invalid_argument(format!(
                "plugin API version {:?} is not supported; this plugin speaks {PLUGIN_API_VERSION}",
                request.plugin_api_version
            )));
        }
        let config = PluginConfig::from_msgpack(&request.msgpack_config)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let long_lived = request.nomad_config.is_some();
        let client_ports = request
            .nomad_config
            .and_then(|nomad| nomad.driver)
            .map(|driver| driver.client_min_port..=driver.client_max_port);
        let api_serving = match config.api_addr {
            Some(addr) if long_lived => {
                let more = match &self.hooks.api_routes {
                    Some(build) => Some(build(&config).map_err(|err| {
                        Status::invalid_argument(format!("the plugin's dtle 2.x API: {err}"))
                    })?),
                    None => None,
                };
                self.api
                    .ensure(addr, Arc::clone(&self.registry), more)
                    .map_err(|err| Status::failed_precondition(err.to_string()))?;
                Some(addr)
            }
            _ => None,
        };
        if let (Some(level), Some(set)) = (&config.log_level, &self.hooks.set_log_level) {
            set(level);
        }
        for note in &config.notes {
            tracing::warn!("plugin config: {note}");
        }
        tracing::info!(
            nats_url = %config.nats_url,
            nats = %config.nats_security.describe(),
            data_dir = ?config.data_dir,
            api_addr = ?config.api_addr,
            ?client_ports,
            "plugin configured"
        );
        self.state.set(Settings {
            config,
            client_ports,
            api_serving,
        });
        Ok(Response::new(SetConfigResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_match_with_or_without_v() {
        assert!(api_version_supported("v0.1.0"));
        assert!(api_version_supported("0.1.0"));
        assert!(!api_version_supported("v0.2.0"));
        assert!(!api_version_supported(""));
    }
}
