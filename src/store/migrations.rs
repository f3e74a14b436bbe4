//! Versioned schema migrations, one list per backend.
//!
//! Each migration is an SQL file under `src/store/migrations/<backend>/`,
//! embedded in the binary. At start a backend applies, in one transaction,
//! the ones its database has not recorded in `schema_migrations` yet, and
//! records them there. A database that records a version this binary does
//! not know was upgraded by a newer release and is refused.
//!
//! To change the schema: add `NNNN_what.sql` for both backends and one line
//! to each list below. Never edit a migration that has been released.

use anyhow::bail;

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3, … with no gaps.
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($backend:literal, $version:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!("migrations/", $backend, "/", $file, ".sql")),
        }
    };
}

/// SQLite migrations. Version 1 is the schema of the first release, which
/// recorded it as `PRAGMA user_version = 1` only.
pub const SQLITE: &[Migration] = &[
    migration!("sqlite", 1, "0001_initial"),
    migration!("sqlite", 2, "0002_client_tokens"),
    migration!("sqlite", 3, "0003_answer_budget"),
    migration!("sqlite", 4, "0004_event_inbox"),
];

/// PostgreSQL migrations (same versions as SQLite, same meaning).
pub const POSTGRES: &[Migration] = &[
    migration!("postgres", 1, "0001_initial"),
    migration!("postgres", 2, "0002_client_tokens"),
    migration!("postgres", 3, "0003_answer_budget"),
    migration!("postgres", 4, "0004_event_inbox"),
];

/// The latest version of `list`.
pub fn latest(list: &[Migration]) -> i64 {
    list.last().map_or(0, |m| m.version)
}

/// The migrations still to apply to a database at version `current`;
/// an error when the database is newer than this binary.
pub fn pending(list: &'static [Migration], current: i64) -> anyhow::Result<&'static [Migration]> {
    let latest = latest(list);
    if current > latest {
        bail!(
            "the database is at schema version {current}, newer than this malomo-mcp \
             understands (up to {latest}): it was upgraded by a newer release. Run that \
             release (or newer), or restore a backup taken before the upgrade"
        );
    }
    Ok(&list[list.partition_point(|m| m.version <= current)..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_without_gaps_and_match_across_backends() {
        for list in [SQLITE, POSTGRES] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "{}", m.name);
                assert!(!m.sql.trim().is_empty(), "{}", m.name);
            }
        }
        let names = |l: &[Migration]| l.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
    }

    #[test]
    fn pending_skips_what_is_applied_and_refuses_newer_databases() {
        assert_eq!(pending(SQLITE, 0).unwrap().len(), SQLITE.len());
        assert!(pending(SQLITE, latest(SQLITE)).unwrap().is_empty());
        let err = pending(SQLITE, latest(SQLITE) + 1).unwrap_err().to_string();
        assert!(err.contains("newer than this malomo-mcp"), "{err}");
    }
}
