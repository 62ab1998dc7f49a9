//! The shared SQL helpers (`store/sql_common.rs`) on the postgres backend.

super::super::sql_common::impl_sql_common!(sqlx::Postgres);
