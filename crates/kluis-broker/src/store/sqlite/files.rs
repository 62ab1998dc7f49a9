//! The SQLite files are private to the broker's user (issue 18.4): the
//! database is created 0600 before SQLite opens it, and SQLite gives the
//! `-wal` and `-shm` files it creates the mode of the database file. Files
//! an older broker created 0644 are tightened at start.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;

/// Creates the database file `options` names (mode 0600) if it is missing,
/// and takes group and other access away from it and its `-wal`, `-shm`
/// and `-journal` files if they have any. An in-memory database has no
/// files.
pub(super) fn make_private(options: &SqliteConnectOptions) -> std::io::Result<()> {
    let path = options.get_filename();
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    match crate::opaque::create_private(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        tighten(Path::new(&name))?;
    }
    Ok(())
}

#[cfg(unix)]
fn tighten(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        tracing::warn!(
            file = %path.display(),
            "the database file was readable by others: made it private (mode 0600)"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
