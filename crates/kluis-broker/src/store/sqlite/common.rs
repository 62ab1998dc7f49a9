//! The shared SQL helpers (`store/sql_common.rs`) on the sqlite backend.

super::super::sql_common::impl_sql_common!(sqlx::Sqlite);
