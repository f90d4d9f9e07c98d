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
