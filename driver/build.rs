//! Generates the Rust code of Nomad's plugin protocol (driver/proto, written from Nomad v1.6 and
//! go-plugin's files) without a system `protoc`: protox parses the files in pure Rust (the
//! `google/protobuf` well-known types come with it) and tonic-prost-build generates messages,
//! servers and clients into OUT_DIR, one file per proto package.

use std::error::Error;

const PROTOS: &[&str] = &[
    "plugins/base/proto/base.proto",
    "plugins/drivers/proto/driver.proto",
    "plugins/shared/hclspec/hcl_spec.proto",
    "plugins/shared/structs/proto/attribute.proto",
    "plugins/shared/structs/proto/recoverable_error.proto",
    "go-plugin/grpc_controller.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(files)?;
    Ok(())
}
