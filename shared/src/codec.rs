//! Payload encodings: proto3 canonical JSON (default) or protobuf binary.
//!
//! The request's `Content-Type` header picks the encoding and the reply uses the same one
//! (DESIGN.md, "Payloads"), so `nats req subject '{"key":"k"}'` works with no headers at all
//! while Rust clients can use compact protobuf. Messages come from `plantd-schemas`, which gives
//! each one both a prost and a pbjson (serde) implementation.

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::ServiceError;

/// The `Content-Type` header name.
pub const CONTENT_TYPE: &str = "Content-Type";
/// `Content-Type` value for JSON payloads.
pub const JSON: &str = "application/json";
/// `Content-Type` value for protobuf payloads.
pub const PROTOBUF: &str = "application/protobuf";

/// A wire message: both encodings are available.
pub trait WireMessage:
    prost::Message + Serialize + DeserializeOwned + Default + Send + 'static
{
}
impl<T> WireMessage for T where
    T: prost::Message + Serialize + DeserializeOwned + Default + Send + 'static
{
}

/// The encoding of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// proto3 canonical JSON.
    #[default]
    Json,
    /// protobuf binary.
    Protobuf,
}

impl Encoding {
    /// The encoding a message's headers ask for; no header, or an unknown one, means JSON.
    /// `application/x-protobuf` and `application/vnd.google.protobuf` are accepted as protobuf.
    pub fn from_headers(headers: Option<&async_nats::HeaderMap>) -> Encoding {
        let Some(value) = headers.and_then(|h| h.get(CONTENT_TYPE)) else {
            return Encoding::Json;
        };
        let media = value.as_str().split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            PROTOBUF | "application/x-protobuf" | "application/vnd.google.protobuf" => {
                Encoding::Protobuf
            }
            _ => Encoding::Json,
        }
    }

    /// The `Content-Type` value of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => JSON,
            Encoding::Protobuf => PROTOBUF,
        }
    }

    /// Headers announcing this encoding.
    pub fn headers(self) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(CONTENT_TYPE, self.content_type());
        headers
    }

    /// Decodes a payload. An empty JSON payload is the message with every field at its
    /// default, as an empty protobuf payload is, so `nats req plantd.state.scope.list ''` works.
    /// Errors are 400s naming what was wrong (serde names the offending field).
    pub fn decode<T: WireMessage>(self, payload: &[u8]) -> Result<T, ServiceError> {
        match self {
            Encoding::Json if payload.iter().all(u8::is_ascii_whitespace) => Ok(T::default()),
            Encoding::Json => {
                let mut de = serde_json::Deserializer::from_slice(payload);
                serde_path_to_error::deserialize(&mut de).map_err(|err| {
                    // The path names the field whose value was wrong; an unknown field is named
                    // by the message itself.
                    let path = err.path().to_string();
                    let inner = err.into_inner();
                    let about_a_value = inner.classify() == serde_json::error::Category::Data;
                    let field = if !about_a_value || path.is_empty() || path == "." {
                        field_of_serde_error(&inner.to_string())
                    } else {
                        Some(path)
                    };
                    let mut error = ServiceError::new(
                        crate::ErrorCode::BadRequest,
                        match &field {
                            Some(f) => format!("invalid JSON request: field {f}: {inner}"),
                            None => format!("invalid JSON request: {inner}"),
                        },
                    );
                    error.field = field;
                    error
                })
            }
            Encoding::Protobuf => T::decode(payload).map_err(|err| {
                ServiceError::new(
                    crate::ErrorCode::BadRequest,
                    format!("invalid protobuf request: {err}"),
                )
            }),
        }
    }

    /// Encodes a message.
    pub fn encode<T: WireMessage>(self, message: &T) -> Bytes {
        match self {
            Encoding::Json => Bytes::from(
                serde_json::to_vec(message)
                    .expect("generated pbjson messages always serialize to JSON"),
            ),
            Encoding::Protobuf => Bytes::from(message.encode_to_vec()),
        }
    }
}

/// Pulls the field name out of a serde error such as "unknown field `foo`, expected …" so a
/// 400 can name it.
fn field_of_serde_error(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use plantd_schemas::echo::v1::EchoRequest;

    use super::*;

    #[test]
    fn content_type_selects_encoding() {
        assert_eq!(Encoding::from_headers(None), Encoding::Json);
        let mut h = async_nats::HeaderMap::new();
        h.insert(CONTENT_TYPE, "application/protobuf");
        assert_eq!(Encoding::from_headers(Some(&h)), Encoding::Protobuf);
        h.insert(CONTENT_TYPE, "application/json; charset=utf-8");
        assert_eq!(Encoding::from_headers(Some(&h)), Encoding::Json);
    }

    #[test]
    fn both_encodings_round_trip() {
        let msg = EchoRequest {
            message: "hallo ü".into(),
        };
        for enc in [Encoding::Json, Encoding::Protobuf] {
            let back: EchoRequest = enc.decode(&enc.encode(&msg)).unwrap();
            assert_eq!(back, msg);
        }
    }

    #[test]
    fn bad_json_is_a_400_naming_the_field() {
        let err = Encoding::Json
            .decode::<EchoRequest>(br#"{"mesage":"x"}"#)
            .unwrap_err();
        assert_eq!(err.code.as_u16(), 400);
        assert_eq!(err.field.as_deref(), Some("mesage"));
        let err = Encoding::Json
            .decode::<EchoRequest>(b"{not json")
            .unwrap_err();
        assert_eq!(err.code.as_u16(), 400);
        let empty: EchoRequest = Encoding::Json.decode(b"").unwrap();
        assert_eq!(empty, EchoRequest::default());
    }
}
