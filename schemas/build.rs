//! Compiles `proto/**/*.proto` with protox (a pure-Rust protobuf compiler), so no machine needs
//! `protoc`, then generates prost types and pbjson serde impls (proto3 canonical JSON).

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "plantd/common/v1/common.proto",
    "plantd/echo/v1/echo.proto",
    "plantd/state/v1/state.proto",
    "plantd/identity/v1/identity.proto",
    "plantd/bus/v1/bus.proto",
    "plantd/logger/v1/logger.proto",
    "plantd/metric/v1/metric.proto",
    "plantd/edge/v1/edge.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("plantd_descriptor.bin");

    let file_descriptors = protox::compile(PROTOS, ["proto"])?;
    let descriptor_bytes = prost::Message::encode_to_vec(&file_descriptors);
    std::fs::write(&descriptor_path, &descriptor_bytes)?;

    let mut config = prost_build::Config::new();
    config
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_well_known_types();
    config.compile_fds(file_descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".plantd"])?;
    Ok(())
}
