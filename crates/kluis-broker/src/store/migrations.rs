//! The schema versions of both backends, side by side: each has a SQLite
//! script in `migrations/sqlite` and a PostgreSQL one in
//! `migrations/postgres`, applied in order by `SchemaStore::migrate`.

/// One schema version.
pub(crate) struct Migration {
    /// Its number (`kluis_schema_version.version`).
    pub version: i64,
    /// The SQLite script.
    pub sqlite: &'static str,
    /// The PostgreSQL script.
    pub postgres: &'static str,
}

/// `migration!(version, file)`, or `migration!(version, sqlite_file,
/// postgres_file)` where the two are named apart.
macro_rules! migration {
    ($version:literal, $file:literal) => {
        migration!($version, $file, $file)
    };
    ($version:literal, $sqlite:literal, $postgres:literal) => {
        Migration {
            version: $version,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $sqlite)),
            postgres: include_str!(concat!("../../migrations/postgres/", $postgres)),
        }
    };
}

/// Every schema version, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_init.sql"),
    migration!(2, "0002_recovery.sql"),
    migration!(3, "0003_groups.sql"),
    migration!(4, "0004_change_counter.sql", "0004_change_notify.sql"),
    migration!(5, "0005_superseded_logins.sql"),
    migration!(6, "0006_limits.sql"),
    migration!(7, "0007_ops.sql"),
    migration!(8, "0008_group_authority.sql"),
    migration!(9, "0009_recovery_decoys.sql"),
];
