//! The generated code of Nomad's plugin protocol (see `driver/build.rs` and `driver/proto/`).
//!
//! prost refers across packages with `super::` paths, so the modules nest exactly as the proto
//! packages do; the short aliases at the bottom are what the rest of the plugin uses.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

pub mod hashicorp {
    pub mod nomad {
        pub mod plugins {
            pub mod base {
                pub mod proto {
                    tonic::include_proto!("hashicorp.nomad.plugins.base.proto");
                }
            }
            pub mod drivers {
                pub mod proto {
                    tonic::include_proto!("hashicorp.nomad.plugins.drivers.proto");
                }
            }
            pub mod shared {
                pub mod hclspec {
                    tonic::include_proto!("hashicorp.nomad.plugins.shared.hclspec");
                }
                pub mod structs {
                    tonic::include_proto!("hashicorp.nomad.plugins.shared.structs");
                }
            }
        }
    }
}

/// go-plugin's own services (package `plugin`).
pub mod go_plugin {
    tonic::include_proto!("plugin");
}

pub use hashicorp::nomad::plugins::base::proto as base;
pub use hashicorp::nomad::plugins::drivers::proto as drivers;
pub use hashicorp::nomad::plugins::shared::hclspec;
pub use hashicorp::nomad::plugins::shared::structs;

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The odd names keep Nomad's numbers: ClientMaxPort is field 1, ClientMinPort 2.
    #[test]
    fn nomad_driver_config_numbers() {
        let max = base::NomadDriverConfig {
            client_max_port: 5,
            client_min_port: 0,
        };
        assert_eq!(max.encode_to_vec(), [0x08, 5]);
        let min = base::NomadDriverConfig {
            client_max_port: 0,
            client_min_port: 7,
        };
        assert_eq!(min.encode_to_vec(), [0x10, 7]);
    }

    /// Spec's `Attr` member is field 3 (length-delimited: tag byte 0x1a), `block_value` 4.
    #[test]
    fn spec_member_numbers() {
        let attr = hclspec::Spec {
            block: Some(hclspec::spec::Block::Attr(hclspec::Attr::default())),
        };
        assert_eq!(attr.encode_to_vec(), [0x1a, 0]);
        let block = hclspec::Spec {
            block: Some(hclspec::spec::Block::BlockValue(Box::default())),
        };
        assert_eq!(block.encode_to_vec(), [0x22, 0]);
    }

    /// PluginType DRIVER is 2; the handle's driver_state is field 4.
    #[test]
    fn plugin_type_and_handle_numbers() {
        assert_eq!(base::PluginType::Driver as i32, 2);
        let handle = drivers::TaskHandle {
            driver_state: vec![9],
            ..Default::default()
        };
        assert_eq!(handle.encode_to_vec(), [0x22, 1, 9]);
    }
}
