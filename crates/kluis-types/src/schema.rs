//! Hand-written OpenAPI schemas for the newtypes whose serde form is a string.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

pub(crate) fn base64_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
        .description(Some("standard base64 (RFC 4648 section 4, padded)"))
        .into()
}

pub(crate) fn string_schema_of(
    description: &'static str,
    min: Option<usize>,
    max: Option<usize>,
    pattern: Option<&'static str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(min)
        .max_length(max)
        .pattern(pattern)
        .into()
}

/// Implements `PartialSchema` + `ToSchema` for a string newtype.
macro_rules! string_schema {
    ($name:ident, $desc:expr, $min:expr, $max:expr, $pattern:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::string_schema_of($desc, $min, $max, $pattern)
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_schema;
