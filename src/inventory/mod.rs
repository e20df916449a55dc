//! The inventory: one SQLite file (WAL) that records the platform's nodes, its VMs, every job
//! Twofold runs (with an id, state and result) and the event timeline. Schema changes are
//! migrations in code, applied in order on open; `PRAGMA user_version` records how far a file is.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nodes::{NodeSpec, Role};

/// Schema migrations, applied in order. Never edit one that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: nodes, VMs, jobs, events.
    r#"
    CREATE TABLE nodes (
        name        TEXT PRIMARY KEY,
        role        TEXT NOT NULL CHECK (role IN ('host', 'storage')),
        address     TEXT NOT NULL,
        ssh_port    INTEGER NOT NULL,
        user        TEXT NOT NULL,
        key_path    TEXT,
        host_key    TEXT,
        added_at    INTEGER NOT NULL
    );
    CREATE TABLE vms (
        name        TEXT PRIMARY KEY,
        uuid        TEXT NOT NULL,
        host        TEXT,
        state       TEXT NOT NULL,
        vcpus       INTEGER NOT NULL,
        memory_mib  INTEGER NOT NULL,
        protected   INTEGER NOT NULL DEFAULT 0,
        priority    INTEGER NOT NULL DEFAULT 0,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        target      TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        result      TEXT,
        error       TEXT
    );
    CREATE INDEX jobs_started ON jobs (started_at);
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          INTEGER NOT NULL,
        severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
        source      TEXT NOT NULL,
        message     TEXT NOT NULL
    );
    "#,
];

/// Where the inventory lives unless told otherwise (`--db` or `TWOFOLD_DB`).
pub fn default_path() -> PathBuf {
    std::env::var_os("TWOFOLD_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/twofold/twofold.db"))
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    pub name: String,
    pub uuid: String,
    pub host: Option<String>,
    pub state: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub protected: bool,
    pub priority: i64,
    pub updated_at: i64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> JobState {
        match s {
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => JobState::Running,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub state: JobState,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
    fn parse(s: &str) -> Severity {
        match s {
            "warning" => Severity::Warning,
            "error" => Severity::Error,
            _ => Severity::Info,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "InventoryEvent"))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub at: i64,
    pub severity: Severity,
    pub source: String,
    pub message: String,
}

pub struct Inventory {
    conn: Connection,
    path: PathBuf,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Inventory {
    /// Open (creating it and its folder if needed) and bring the schema up to date.
    pub fn open(path: &Path) -> Result<Inventory> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| Error::Inventory {
                    path: path.to_path_buf(),
                    detail: format!(
                        "cannot create its folder ({e}); choose a writable place with --db"
                    ),
                })?;
            }
        }
        let conn = Connection::open(path).map_err(|e| inv_err(path, e))?;
        let mut inv = Inventory {
            conn,
            path: path.to_path_buf(),
        };
        inv.setup()?;
        Ok(inv)
    }

    /// An inventory that lives only in memory (unit tests, dry runs).
    pub fn open_in_memory() -> Result<Inventory> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| inv_err(&path, e))?;
        let mut inv = Inventory { conn, path };
        inv.setup()?;
        Ok(inv)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn setup(&mut self) -> Result<()> {
        let p = self.path.clone();
        // Several processes (the CLI, the app, the supervisor) may open a new file at once.
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| inv_err(&p, e))?;
        // WAL lets the supervisor write while the app and the CLI read. Switching a new file to
        // WAL can answer SQLITE_BUSY at once, without calling the busy handler, while another
        // process is switching it too: retry for as long as the busy timeout would have waited.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match self.conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(inv_err(&p, e)),
            }
        }
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| inv_err(&p, e))?;
        // Each migration runs in an IMMEDIATE transaction that reads the schema version under the
        // write lock, so two processes opening a new file cannot both apply the same migration.
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| inv_err(&p, e))?;
            let version: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(|e| inv_err(&p, e))?;
            if version as usize > MIGRATIONS.len() {
                return Err(Error::Inventory {
                    path: p,
                    detail: format!(
                        "written by a newer Twofold (schema {version}, this one knows {}); upgrade Twofold",
                        MIGRATIONS.len()
                    ),
                });
            }
            let Some(sql) = MIGRATIONS.get(version as usize) else {
                return Ok(());
            };
            tx.execute_batch(sql).map_err(|e| inv_err(&p, e))?;
            tx.pragma_update(None, "user_version", version + 1)
                .map_err(|e| inv_err(&p, e))?;
            tx.commit().map_err(|e| inv_err(&p, e))?;
        }
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| inv_err(&self.path, e))
    }

    // ---- nodes -------------------------------------------------------------------------------

    pub fn upsert_node(&self, n: &NodeSpec) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO nodes (name, role, address, ssh_port, user, key_path, host_key, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(name) DO UPDATE SET role = ?2, address = ?3, ssh_port = ?4, user = ?5,
                    key_path = ?6, host_key = ?7",
                params![
                    n.name,
                    n.role.as_str(),
                    n.address,
                    n.ssh_port,
                    n.user,
                    n.key.as_ref().map(|k| k.display().to_string()),
                    n.host_key,
                    now_ms()
                ],
            )
            .map_err(|e| inv_err(&self.path, e))?;
        Ok(())
    }

    pub fn remove_node(&self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM nodes WHERE name = ?1", params![name])
            .map_err(|e| inv_err(&self.path, e))?;
        Ok(n > 0)
    }

    pub fn nodes(&self) -> Result<Vec<NodeSpec>> {
        let mut st = self
            .conn
            .prepare("SELECT name, role, address, ssh_port, user, key_path, host_key FROM nodes ORDER BY role, name")
            .map_err(|e| inv_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| {
                let role: String = r.get(1)?;
                Ok(NodeSpec {
                    name: r.get(0)?,
                    role: Role::parse(&role).unwrap_or(Role::Host),
                    address: r.get(2)?,
                    ssh_port: r.get(3)?,
                    user: r.get(4)?,
                    key: r.get::<_, Option<String>>(5)?.map(PathBuf::from),
                    host_key: r.get(6)?,
                })
            })
            .map_err(|e| inv_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| inv_err(&self.path, e))
    }

    pub fn node(&self, name: &str) -> Result<Option<NodeSpec>> {
        Ok(self.nodes()?.into_iter().find(|n| n.name == name))
    }

    // ---- VMs ---------------------------------------------------------------------------------

    /// Record what was observed of a VM; keeps its protection settings.
    pub fn record_vm(
        &self,
        name: &str,
        uuid: &str,
        host: Option<&str>,
        state: &str,
        vcpus: u32,
        memory_mib: u64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO vms (name, uuid, host, state, vcpus, memory_mib, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(name) DO UPDATE SET uuid = ?2, host = ?3, state = ?4, vcpus = ?5,
                    memory_mib = ?6, updated_at = ?7",
                params![name, uuid, host, state, vcpus, memory_mib as i64, now_ms()],
            )
            .map_err(|e| inv_err(&self.path, e))?;
        Ok(())
    }

    pub fn set_vm_protection(&self, name: &str, protected: bool, priority: i64) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE vms SET protected = ?2, priority = ?3 WHERE name = ?1",
                params![name, protected, priority],
            )
            .map_err(|e| inv_err(&self.path, e))?;
        Ok(n > 0)
    }

    pub fn vms(&self) -> Result<Vec<VmRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT name, uuid, host, state, vcpus, memory_mib, protected, priority, updated_at
                 FROM vms ORDER BY name",
            )
            .map_err(|e| inv_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| {
                Ok(VmRecord {
                    name: r.get(0)?,
                    uuid: r.get(1)?,
                    host: r.get(2)?,
                    state: r.get(3)?,
                    vcpus: r.get(4)?,
                    memory_mib: r.get::<_, i64>(5)? as u64,
                    protected: r.get(6)?,
                    priority: r.get(7)?,
                    updated_at: r.get(8)?,
                })
            })
            .map_err(|e| inv_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| inv_err(&self.path, e))
    }

    // ---- jobs --------------------------------------------------------------------------------

    /// Start a job row; returns its id.
    pub fn start_job(&self, kind: &str, target: &str) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        self.conn
            .execute(
                "INSERT INTO jobs (id, kind, target, state, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![id, kind, target, now_ms()],
            )
            .map_err(|e| inv_err(&self.path, e))?;
        Ok(id)
    }

    pub fn finish_job(
        &self,
        id: &str,
        outcome: std::result::Result<&serde_json::Value, &str>,
    ) -> Result<()> {
        let (state, result, error) = match outcome {
            Ok(v) => (JobState::Succeeded, Some(v.to_string()), None),
            Err(e) => (JobState::Failed, None, Some(e.to_string())),
        };
        self.conn
            .execute(
                "UPDATE jobs SET state = ?2, finished_at = ?3, result = ?4, error = ?5 WHERE id = ?1",
                params![id, state.as_str(), now_ms(), result, error],
            )
            .map_err(|e| inv_err(&self.path, e))?;
        Ok(())
    }

    pub fn jobs(&self, limit: usize) -> Result<Vec<Job>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, kind, target, state, started_at, finished_at, result, error
                 FROM jobs ORDER BY started_at DESC, rowid DESC LIMIT ?1",
            )
            .map_err(|e| inv_err(&self.path, e))?;
        let rows = st
            .query_map(params![limit as i64], |r| {
                let state: String = r.get(3)?;
                let result: Option<String> = r.get(6)?;
                Ok(Job {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    target: r.get(2)?,
                    state: JobState::parse(&state),
                    started_at: r.get(4)?,
                    finished_at: r.get(5)?,
                    result: result.and_then(|s| serde_json::from_str(&s).ok()),
                    error: r.get(7)?,
                })
            })
            .map_err(|e| inv_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| inv_err(&self.path, e))
    }

    // ---- events ------------------------------------------------------------------------------

    pub fn add_event(&self, severity: Severity, source: &str, message: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO events (at, severity, source, message) VALUES (?1, ?2, ?3, ?4)",
                params![now_ms(), severity.as_str(), source, message],
            )
            .map_err(|e| inv_err(&self.path, e))?;
        Ok(())
    }

    pub fn events(&self, limit: usize) -> Result<Vec<Event>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, at, severity, source, message FROM events ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| inv_err(&self.path, e))?;
        let rows = st
            .query_map(params![limit as i64], |r| {
                let sev: String = r.get(2)?;
                Ok(Event {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    severity: Severity::parse(&sev),
                    source: r.get(3)?,
                    message: r.get(4)?,
                })
            })
            .map_err(|e| inv_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| inv_err(&self.path, e))
    }
}

fn inv_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Inventory {
        path: path.to_path_buf(),
        detail: format!("{e}; if the file is damaged, move it away and run the command again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: Role) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            role,
            address: format!("{name}.example"),
            ssh_port: 22,
            user: "root".into(),
            key: Some("/k".into()),
            host_key: None,
        }
    }

    #[test]
    fn migrations_apply_once_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/inv.db");
        {
            let inv = Inventory::open(&p).unwrap();
            assert_eq!(inv.schema_version().unwrap(), MIGRATIONS.len() as i64);
            inv.upsert_node(&node("host1", Role::Host)).unwrap();
        }
        let inv = Inventory::open(&p).unwrap();
        assert_eq!(inv.nodes().unwrap().len(), 1);
        let mode: String = inv
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn concurrent_first_opens_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("inv.db");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || Inventory::open(&p).map(|i| i.schema_version().unwrap()))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), MIGRATIONS.len() as i64);
        }
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("inv.db");
        {
            let inv = Inventory::open(&p).unwrap();
            inv.conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = Inventory::open(&p).err().unwrap();
        assert!(err.to_string().contains("newer Twofold"), "{err}");
    }

    #[test]
    fn nodes_vms_jobs_events() {
        let inv = Inventory::open_in_memory().unwrap();
        inv.upsert_node(&node("stor1", Role::Storage)).unwrap();
        inv.upsert_node(&node("host1", Role::Host)).unwrap();
        let mut h = node("host1", Role::Host);
        h.address = "10.0.0.1".into();
        inv.upsert_node(&h).unwrap();
        let nodes = inv.nodes().unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(inv.node("host1").unwrap().unwrap().address, "10.0.0.1");

        inv.record_vm("web", "u1", Some("host1"), "running", 2, 1024)
            .unwrap();
        assert!(inv.set_vm_protection("web", true, 10).unwrap());
        inv.record_vm("web", "u1", Some("host2"), "running", 2, 1024)
            .unwrap();
        let vms = inv.vms().unwrap();
        assert_eq!(vms[0].host.as_deref(), Some("host2"));
        assert!(vms[0].protected, "observation keeps protection");
        assert!(!inv.set_vm_protection("nope", true, 1).unwrap());

        let id = inv.start_job("migrate", "web").unwrap();
        assert_eq!(inv.jobs(10).unwrap()[0].state, JobState::Running);
        inv.finish_job(&id, Ok(&serde_json::json!({"downtime_ms": 12})))
            .unwrap();
        let j = &inv.jobs(10).unwrap()[0];
        assert_eq!(j.state, JobState::Succeeded);
        assert_eq!(j.result.as_ref().unwrap()["downtime_ms"], 12);
        let id2 = inv.start_job("migrate", "web").unwrap();
        inv.finish_job(&id2, Err("boom")).unwrap();
        assert_eq!(inv.jobs(1).unwrap()[0].error.as_deref(), Some("boom"));

        inv.add_event(Severity::Warning, "host1", "down").unwrap();
        inv.add_event(Severity::Info, "host1", "up").unwrap();
        let ev = inv.events(10).unwrap();
        assert_eq!(ev[0].message, "up");
        assert_eq!(ev[1].severity, Severity::Warning);
    }
}
