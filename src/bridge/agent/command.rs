//! Tools that are local commands: `command` is the program and its
//! arguments, run without a shell; the invocation's arguments (a JSON
//! object) are written to its standard input, never spliced into the
//! command line. Each line of standard output is an `output` piece; a line
//! of standard error of the form `PROGRESS <n>[/<total>] [message]` is a
//! progress report. Exit status 0 ends with the result `{exit_code,
//! stdout}`, any other with an error carrying the end of standard error.
//! The process is killed at the timeout or when the invocation is cancelled.

use super::Out;
use crate::bridge::wire::Tool;
use serde::Deserialize;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Standard output kept for the result at most.
const KEEP_STDOUT: usize = 1 << 20;
/// Standard error kept for an error message at most.
const KEEP_STDERR: usize = 4 << 10;

/// A command tool in the agent's file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandTool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments; default any object.
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Most milliseconds it may run (also bounded by the invocation's timeout).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl CommandTool {
    pub fn announce(&self) -> Tool {
        Tool {
            name: self.name.clone(),
            description: self.description.clone(),
            input_schema: self
                .input_schema
                .clone()
                .unwrap_or_else(|| json!({"type": "object"})),
        }
    }

    pub async fn run(
        &self,
        args: &Value,
        out: &Out,
        timeout: Duration,
    ) -> Result<Value, (String, String)> {
        let timeout = self
            .timeout_ms
            .map_or(timeout, |t| timeout.min(Duration::from_millis(t)));
        let Some((program, rest)) = self.command.split_first() else {
            return Err(("tool_error".into(), "the tool has no command".into()));
        };
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                (
                    "tool_error".to_string(),
                    format!("cannot start {program}: {e}"),
                )
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let input = args.to_string();
            // A command that does not read its input is not an error.
            let _ = stdin.write_all(input.as_bytes()).await;
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let progress_out = out.clone();
        let errors = tokio::spawn(async move {
            let mut kept = String::new();
            let Some(e) = stderr else { return kept };
            let mut lines = BufReader::new(e).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(p) = line.strip_prefix("PROGRESS ") {
                    let (figures, message) = p.split_once(' ').unwrap_or((p, ""));
                    let (n, total) = figures.split_once('/').unwrap_or((figures, ""));
                    if let Ok(n) = n.parse::<f64>() {
                        progress_out.progress(
                            n,
                            total.parse().ok(),
                            (!message.is_empty()).then(|| message.to_string()),
                        );
                        continue;
                    }
                }
                kept.push_str(&line);
                kept.push('\n');
                if kept.len() > KEEP_STDERR {
                    let cut = kept.len() - KEEP_STDERR;
                    let cut = (cut..kept.len())
                        .find(|i| kept.is_char_boundary(*i))
                        .unwrap_or(0);
                    kept.drain(..cut);
                }
            }
            kept
        });
        let work = async {
            let mut text = String::new();
            if let Some(o) = stdout {
                let mut lines = BufReader::new(o).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if text.len() < KEEP_STDOUT {
                        text.push_str(&line);
                        text.push('\n');
                    }
                    out.output(Value::String(line));
                }
            }
            let status = child.wait().await;
            (text, status)
        };
        let (text, status) = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => {
                return Err((
                    "tool_timeout".into(),
                    format!("the command ran longer than {} ms", timeout.as_millis()),
                ))
            }
        };
        let stderr = errors.await.unwrap_or_default();
        match status {
            Ok(s) if s.success() => Ok(json!({"exit_code": 0, "stdout": text})),
            Ok(s) => Err((
                "exit_status".into(),
                format!(
                    "the command exited with {}: {}",
                    s.code().map_or("a signal".to_string(), |c| c.to_string()),
                    stderr.trim_end()
                ),
            )),
            Err(e) => Err(("tool_error".into(), format!("waiting for the command: {e}"))),
        }
    }
}
