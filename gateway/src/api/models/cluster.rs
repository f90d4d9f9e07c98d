//! `GET /v1/nodes` and `/v1/members`: the agents, as Nomad's nodes and server members.

use crate::orchestrator::Node;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A node of `GET /v1/nodes`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleNode)]
pub struct NodeView {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub datacenter: String,
    /// `host:port` of the node's agent.
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    /// `ready` or `down`.
    pub status: String,
    pub status_description: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `GET /v1/nodes`.
pub fn nodes(nodes: &[Node]) -> Vec<NodeView> {
    nodes
        .iter()
        .map(|n| NodeView {
            id: n.id.clone(),
            name: n.name.clone(),
            datacenter: n.datacenter.clone(),
            http_addr: n.http_addr.clone(),
            status: n.status.clone(),
            status_description: String::new(),
            create_index: n.create_index,
            modify_index: n.modify_index,
        })
        .collect()
}

/// `GET /v1/members`: the agents, as Nomad's server members.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleMembers)]
pub struct Members {
    pub members: Vec<Member>,
    pub server_name: String,
    #[serde(rename = "ServerDC")]
    pub server_dc: String,
    pub server_region: String,
}

/// One agent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = DtleMember)]
pub struct Member {
    pub name: String,
    pub addr: String,
    pub port: u16,
    /// Always `alive`.
    pub status: String,
    /// `dc`, `region`, `role` and `build`.
    pub tags: BTreeMap<String, String>,
    pub protocol_min: u8,
    pub protocol_max: u8,
    pub protocol_cur: u8,
    pub delegate_min: u8,
    pub delegate_max: u8,
    pub delegate_cur: u8,
}

/// `GET /v1/members`.
pub fn members(nodes: &[Node], region: &str) -> Members {
    let members = nodes
        .iter()
        .map(|n| {
            let (addr, port) = n
                .http_addr
                .rsplit_once(':')
                .unwrap_or((n.http_addr.as_str(), "0"));
            let tags = [
                ("dc", n.datacenter.as_str()),
                ("region", region),
                ("role", "dtle"),
                ("build", env!("CARGO_PKG_VERSION")),
            ];
            Member {
                name: n.name.clone(),
                addr: addr.to_owned(),
                port: port.parse::<u16>().unwrap_or(0),
                status: "alive".to_owned(),
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                protocol_min: 1,
                protocol_max: 5,
                protocol_cur: 2,
                delegate_min: 2,
                delegate_max: 5,
                delegate_cur: 4,
            }
        })
        .collect();
    Members {
        members,
        server_name: nodes.first().map(|n| n.name.clone()).unwrap_or_default(),
        server_dc: nodes
            .first()
            .map(|n| n.datacenter.clone())
            .unwrap_or_default(),
        server_region: region.to_owned(),
    }
}
