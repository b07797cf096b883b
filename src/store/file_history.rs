//! The file store's history files, next to its state file:
//! `<state>.revisions.jsonl` (one line per revision: its record and its
//! whole snapshot, secrets in clear like the state file, so 0600) and
//! `<state>.audit.jsonl` (one masked audit entry per line). Lines are
//! appended and fsynced after the state file is written; when a file holds
//! twice what [`super::history`] keeps, it is rewritten atomically with
//! the kept part. A torn last line (a crash mid-append) is skipped with a
//! warning. The history is read once, on first use, into a
//! [`Memory`](super::history::Memory).

use super::config_file::{write_atomic, Entities};
use super::history::{AuditEntry, AuditQuery, Commit, Memory, RevisionRecord};
use super::history::{AUDIT_KEPT, REVISIONS_KEPT};
use super::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The two files, and what they hold once read.
#[derive(Debug)]
pub struct FileHistory {
    revisions: PathBuf,
    audit: PathBuf,
    state: Mutex<Option<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    memory: Memory,
    /// Lines in each file (to know when to compact).
    revision_lines: u64,
    audit_lines: u64,
}

#[derive(Deserialize)]
struct RevisionLine {
    record: RevisionRecord,
    snapshot: Entities,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::File(format!("{}: {e}", path.display()))
}

/// The lines of a JSONL file that parse (none when it does not exist);
/// a file with lines that do not (a torn last line) is rewritten with
/// those that do, so the next append starts on a line of its own.
fn read_lines<T: for<'de> Deserialize<'de>>(
    path: &Path,
    line: impl Fn(&T) -> Value,
) -> Result<Vec<T>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path, e)),
    };
    let out = parse_lines(path, &text);
    if !text.is_empty() && !text.ends_with('\n') {
        rewrite(path, out.iter().map(line))?;
    }
    Ok(out)
}

fn parse_lines<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Vec<T> {
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(e) => log::warn!(
                "{}: line {} skipped (not a history entry: {e})",
                path.display(),
                n + 1
            ),
        }
    }
    out
}

fn append(path: &Path, lines: &[Value]) -> Result<(), StoreError> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.to_string());
        text.push('\n');
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| io_err(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| io_err(path, e))?;
    f.sync_data().map_err(|e| io_err(path, e))
}

fn rewrite(path: &Path, lines: impl Iterator<Item = Value>) -> Result<(), StoreError> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.to_string());
        text.push('\n');
    }
    write_atomic(path, text.as_bytes()).map_err(|e| io_err(path, e))
}

fn entry_line(e: &AuditEntry) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

fn revision_line(record: &RevisionRecord, snapshot: &Entities) -> Value {
    json!({"record": record, "snapshot": snapshot.to_json()})
}

impl FileHistory {
    /// The history of the state file at `state`.
    pub fn new(state: &Path) -> FileHistory {
        let name = |suffix: &str| {
            let mut p = state.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        FileHistory {
            revisions: name(".revisions.jsonl"),
            audit: name(".audit.jsonl"),
            state: Mutex::new(None),
        }
    }

    fn loaded(&self) -> Result<MutexGuard<'_, Option<Loaded>>, StoreError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let revisions: Vec<RevisionLine> = read_lines(&self.revisions, |l: &RevisionLine| {
                revision_line(&l.record, &l.snapshot)
            })?;
            let audit: Vec<AuditEntry> = read_lines(&self.audit, entry_line)?;
            let (revision_lines, audit_lines) = (revisions.len() as u64, audit.len() as u64);
            let mut memory = Memory::default();
            memory.restore_from(
                revisions
                    .into_iter()
                    .map(|l| (l.record, l.snapshot))
                    .collect(),
                audit,
            );
            *guard = Some(Loaded {
                memory,
                revision_lines,
                audit_lines,
            });
        }
        Ok(guard)
    }

    /// Appends a commit of `next` over `prev` (after the state file was
    /// written).
    pub fn record(
        &self,
        commit: &Commit,
        prev: &Entities,
        next: &Entities,
    ) -> Result<(), StoreError> {
        let mut guard = self.loaded()?;
        let Some(l) = guard.as_mut() else {
            return Ok(());
        };
        let (revisions, entries) = l.memory.record(commit, prev, next);
        let revision_lines: Vec<Value> =
            revisions.iter().map(|(r, e)| revision_line(r, e)).collect();
        append(&self.revisions, &revision_lines)?;
        let lines: Vec<Value> = entries.iter().map(entry_line).collect();
        append(&self.audit, &lines)?;
        l.revision_lines += revision_lines.len() as u64;
        l.audit_lines += lines.len() as u64;
        let (revisions, audit) = l.memory.kept();
        if l.revision_lines > 2 * REVISIONS_KEPT {
            rewrite(
                &self.revisions,
                revisions.iter().map(|(r, e)| revision_line(r, e)),
            )?;
            l.revision_lines = revisions.len() as u64;
        }
        if l.audit_lines > 2 * AUDIT_KEPT {
            rewrite(&self.audit, audit.iter().map(entry_line))?;
            l.audit_lines = audit.len() as u64;
        }
        Ok(())
    }

    pub fn revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionRecord>, StoreError> {
        Ok(self
            .loaded()?
            .as_ref()
            .map(|l| l.memory.revisions(before, limit))
            .unwrap_or_default())
    }

    pub fn snapshot(&self, n: u64) -> Result<Option<Entities>, StoreError> {
        Ok(self.loaded()?.as_ref().and_then(|l| l.memory.snapshot(n)))
    }

    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .loaded()?
            .as_ref()
            .map(|l| l.memory.audit(q))
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Namespace;

    #[test]
    fn survives_a_restart_and_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("sluice-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("s.state.json");
        let h = FileHistory::new(&state);
        let prev = Entities::default();
        let mut next = prev.clone();
        next.revision = 1;
        next.namespaces.push(
            serde_json::from_value::<Namespace>(
                json!({"id": 1, "namespace_code": "a", "namespace_name": "a"}),
            )
            .unwrap(),
        );
        h.record(
            &Commit::new(&prev, &next, "token:ops", "change", 9),
            &prev,
            &next,
        )
        .unwrap();
        // A crash mid-append leaves half a line.
        append(&h.audit, &[]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&h.audit)
            .unwrap()
            .write_all(b"{\"id\": 2, \"rev")
            .unwrap();
        let again = FileHistory::new(&state);
        let revs = again.revisions(None, 10).unwrap();
        assert_eq!(revs.len(), 2, "the change and the starting configuration");
        assert_eq!(revs[0].actor, "token:ops");
        assert_eq!((revs[1].revision, revs[1].cause.as_str()), (0, "import"));
        assert_eq!(again.snapshot(1).unwrap().unwrap().namespaces.len(), 1);
        let audit = again
            .audit(&AuditQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].change.entity, "namespaces");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
