//! The MariaDB topology every database test stands on: four servers with distinct server ids, GTID
//! replication from the primary to the standby and both replicas, and read_only everywhere but on
//! the primary.

use std::time::Duration;

use integration_tests::mariadb::{DbTopology, APP};
use integration_tests::require_root;

#[test]
fn topology_replicates_with_gtid_and_distinct_server_ids() -> anyhow::Result<()> {
    if !require_root("topology_replicates_with_gtid_and_distinct_server_ids") {
        return Ok(());
    }
    let db = DbTopology::start("db-topology")?;
    let as_app = |server, sql| db.sql(server, APP.user, APP.password, sql);

    let mut server_ids = Vec::new();
    for server in db.servers() {
        let server_id: u32 = as_app(server, "SELECT @@server_id")?.parse()?;
        assert_eq!(
            server_id, server.server_id,
            "@@server_id of the {}",
            server.name
        );
        server_ids.push(server_id);
    }
    server_ids.sort_unstable();
    assert_eq!(server_ids, [1, 2, 3, 4]);

    let primary = db.primary();
    as_app(
        primary,
        "CREATE TABLE appdb.greetings (id INT PRIMARY KEY, message VARCHAR(64)) ENGINE=InnoDB;
         INSERT INTO appdb.greetings VALUES (1, 'written on the primary')",
    )?;
    db.wait_replicated(Duration::from_secs(10))?;

    assert_eq!(
        as_app(primary, "SELECT @@read_only")?,
        "0",
        "read_only on the primary"
    );
    for server in std::iter::once(db.standby()).chain(db.replicas()) {
        assert_eq!(
            as_app(server, "SELECT message FROM appdb.greetings WHERE id = 1")?,
            "written on the primary",
            "the row on the {}",
            server.name
        );
        assert_eq!(
            as_app(server, "SELECT @@read_only")?,
            "1",
            "read_only on the {}",
            server.name
        );
        let refused = as_app(
            server,
            "INSERT INTO appdb.greetings VALUES (2, 'written on a replica')",
        );
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("read-only")),
            "the {} took a write from app: {refused:?}",
            server.name
        );
    }
    Ok(())
}
