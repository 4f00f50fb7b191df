//! plantd's wire messages, defined once in `proto/` and generated at build time.
//!
//! Every message has prost (protobuf binary) and serde (proto3 canonical JSON, field names as
//! in the `.proto`) implementations, so one type serves both encodings a request may use.
#![forbid(unsafe_code)]
#![allow(clippy::all, missing_docs)]

/// `plantd.common.v1`: error bodies and health.
pub mod common {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.common.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.common.v1.serde.rs"));
    }
}

/// `plantd.echo.v1`: the echo module.
pub mod echo {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.echo.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.echo.v1.serde.rs"));
    }
}

/// `plantd.edge.v1`: edge links.
pub mod edge {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.edge.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.edge.v1.serde.rs"));
    }
}

/// `plantd.metric.v1`: the metric module.
pub mod metric {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.metric.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.metric.v1.serde.rs"));
    }
}

/// `plantd.state.v1`: the state service.
pub mod state {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.state.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.state.v1.serde.rs"));
    }
}

/// Well-known types used by the messages (timestamps).
pub use pbjson_types as wkt;

/// `plantd.identity.v1`: the identity service.
pub mod identity {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.identity.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.identity.v1.serde.rs"));
    }
}

/// `plantd.bus.v1`: the bus service (bus info, replay).
pub mod bus {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.bus.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.bus.v1.serde.rs"));
    }
}

/// `plantd.logger.v1`: log records and the logger's query.
pub mod logger {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plantd.logger.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/plantd.logger.v1.serde.rs"));
    }
}
