//! The file store's history, in a directory beside its state file,
//! `<state>.history/`: `revisions.jsonl` (one revision record per line),
//! `audit.jsonl` (one masked audit entry per line) and one snapshot file
//! per kept revision, `r<n>.json` (secrets in clear like the state file,
//! so 0600; written atomically). Written after the state file; a snapshot
//! file goes when its revision leaves the kept history. A JSONL file that
//! holds twice what [`super::history`] keeps is rewritten atomically with
//! the kept part; a torn last line (a crash mid-append) is skipped with a
//! warning and the file rewritten without it.
//!
//! Records and audit entries are read once, on first use, into a
//! [`Memory`] (records only: a snapshot is read from its file when asked
//! for, so memory does not grow with the configuration's size).

use super::config_file::{write_atomic, Entities};
use super::history::{AuditEntry, AuditQuery, Commit, Memory, RevisionRecord};
use super::history::{AUDIT_KEPT, REVISIONS_KEPT};
use super::StoreError;
use serde::Deserialize;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The history directory, and what it holds once read.
#[derive(Debug)]
pub struct FileHistory {
    dir: PathBuf,
    state: Mutex<Option<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    memory: Memory,
    /// Lines in each JSONL file (to know when to compact).
    revision_lines: u64,
    audit_lines: u64,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::File(format!("{}: {e}", path.display()))
}

fn line<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The lines of a JSONL file that parse (none when it does not exist);
/// a file with a torn last line is rewritten with the lines that parse,
/// so the next append starts on a line of its own.
fn read_lines<T: for<'de> Deserialize<'de> + serde::Serialize>(
    path: &Path,
) -> Result<Vec<T>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path, e)),
    };
    let mut out = Vec::new();
    for (n, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str(l) {
            Ok(v) => out.push(v),
            Err(e) => log::warn!(
                "{}: line {} skipped (not a history entry: {e})",
                path.display(),
                n + 1
            ),
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        rewrite(path, out.iter().map(line))?;
    }
    Ok(out)
}

fn append(path: &Path, lines: &[Value]) -> Result<(), StoreError> {
    if lines.is_empty() {
        return Ok(());
    }
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

impl FileHistory {
    /// The history of the state file at `state`.
    pub fn new(state: &Path) -> FileHistory {
        let mut dir = state.as_os_str().to_owned();
        dir.push(".history");
        FileHistory {
            dir: PathBuf::from(dir),
            state: Mutex::new(None),
        }
    }

    /// The directory (`<state>.history`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn revisions_file(&self) -> PathBuf {
        self.dir.join("revisions.jsonl")
    }

    fn audit_file(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn snapshot_file(&self, n: u64) -> PathBuf {
        self.dir.join(format!("r{n}.json"))
    }

    fn loaded(&self) -> Result<MutexGuard<'_, Option<Loaded>>, StoreError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let revisions: Vec<RevisionRecord> = read_lines(&self.revisions_file())?;
            let audit: Vec<AuditEntry> = read_lines(&self.audit_file())?;
            let (revision_lines, audit_lines) = (revisions.len() as u64, audit.len() as u64);
            let mut memory = Memory::records_only();
            memory.restore_from(revisions, audit);
            *guard = Some(Loaded {
                memory,
                revision_lines,
                audit_lines,
            });
        }
        Ok(guard)
    }

    /// Records a commit of `next` over `prev` (after the state file was
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
        std::fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let added = l.memory.record(commit, prev, next);
        for (r, snapshot) in &added.revisions {
            let bytes = serde_json::to_vec(&snapshot.to_json()).map_err(|e| {
                StoreError::Corrupt(format!("cannot encode revision {}: {e}", r.revision))
            })?;
            let path = self.snapshot_file(r.revision);
            write_atomic(&path, &bytes).map_err(|e| io_err(&path, e))?;
        }
        let records: Vec<Value> = added.revisions.iter().map(|(r, _)| line(r)).collect();
        append(&self.revisions_file(), &records)?;
        let entries: Vec<Value> = added.audit.iter().map(line).collect();
        append(&self.audit_file(), &entries)?;
        l.revision_lines += records.len() as u64;
        l.audit_lines += entries.len() as u64;
        for n in added.dropped {
            let _ = std::fs::remove_file(self.snapshot_file(n));
        }
        let (revisions, audit) = l.memory.kept();
        if l.revision_lines > 2 * REVISIONS_KEPT {
            rewrite(&self.revisions_file(), revisions.iter().map(line))?;
            l.revision_lines = revisions.len() as u64;
        }
        if l.audit_lines > 2 * AUDIT_KEPT {
            rewrite(&self.audit_file(), audit.iter().map(line))?;
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

    /// The snapshot of kept revision `n`, read from its file.
    pub fn snapshot(&self, n: u64) -> Result<Option<Entities>, StoreError> {
        let kept = self.loaded()?.as_ref().is_some_and(|l| l.memory.keeps(n));
        if !kept {
            return Ok(None);
        }
        let path = self.snapshot_file(n);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, e)),
        };
        let mut de = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut de)
            .map(Some)
            .map_err(|e| {
                StoreError::Corrupt(format!("{}: {}: {}", path.display(), e.path(), e.inner()))
            })
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
    use serde_json::json;

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
        std::fs::OpenOptions::new()
            .append(true)
            .open(h.audit_file())
            .unwrap()
            .write_all(b"{\"id\": 2, \"rev")
            .unwrap();
        let again = FileHistory::new(&state);
        let revs = again.revisions(None, 10).unwrap();
        assert_eq!(revs.len(), 2, "the change and the starting configuration");
        assert_eq!(revs[0].actor, "token:ops");
        assert_eq!((revs[1].revision, revs[1].cause.as_str()), (0, "import"));
        assert_eq!(again.snapshot(1).unwrap().unwrap().namespaces.len(), 1);
        assert!(again.snapshot(0).unwrap().unwrap().namespaces.is_empty());
        assert!(again.snapshot(7).unwrap().is_none());
        let audit = again
            .audit(&AuditQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].change.entity, "namespaces");
        // The torn line is gone: the next entry starts a line of its own.
        let text = std::fs::read_to_string(again.audit_file()).unwrap();
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
