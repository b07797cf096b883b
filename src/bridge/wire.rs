//! The tunnel's messages, as JSON.
//!
//! An agent opens its tunnel with `POST /internal/v1/bridge/tunnel`
//! (its token as `Authorization: Bearer bat_…`, a [`Hello`] as the body).
//! The answer is a stream that stays open: one [`Down`] message per line
//! (NDJSON), a `welcome` first. The agent sends its own messages ([`Up`])
//! as `POST /internal/v1/bridge/tunnel/messages` ([`Batch`]), each
//! acknowledged by its status; an empty batch is a heartbeat.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool an agent offers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments (an object schema); none = any object.
    #[serde(default = "any_object")]
    pub input_schema: Value,
}

fn any_object() -> Value {
    serde_json::json!({"type": "object"})
}

/// The body that opens a tunnel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub agent_id: String,
    /// Display name; default the id.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tools: Vec<Tool>,
}

/// Gateway → agent.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Down<'a> {
    /// The tunnel is open: `session` goes with every [`Batch`].
    Welcome {
        session: &'a str,
        agent_id: &'a str,
        ping_ms: u64,
    },
    /// Run a tool.
    Invoke {
        req_id: &'a str,
        tool: &'a str,
        arguments: &'a Value,
        timeout_ms: u64,
    },
    /// Stop an invocation; its later messages are dropped.
    Cancel { req_id: &'a str, reason: &'a str },
    /// Keep-alive.
    Ping,
    /// The tunnel closes (`draining`, `replaced`, `token_revoked`): reconnect.
    Goaway { reason: &'a str },
}

impl Down<'_> {
    /// The message as one NDJSON line.
    pub fn line(&self) -> bytes::Bytes {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v.into()
    }
}

/// The body of `POST /internal/v1/bridge/tunnel/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub session: String,
    #[serde(default)]
    pub messages: Vec<Up>,
}

/// Agent → gateway: what an invocation produced.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Up {
    /// How far the tool is.
    Progress {
        req_id: String,
        progress: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A piece of output (text or any JSON), streamed as it comes.
    Output { req_id: String, data: Value },
    /// The final result.
    Result { req_id: String, result: Value },
    /// The tool failed.
    Error {
        req_id: String,
        #[serde(default = "tool_error")]
        code: String,
        message: String,
    },
}

fn tool_error() -> String {
    "tool_error".into()
}

impl Up {
    /// The invocation the message belongs to.
    pub fn req_id(&self) -> &str {
        match self {
            Up::Progress { req_id, .. }
            | Up::Output { req_id, .. }
            | Up::Result { req_id, .. }
            | Up::Error { req_id, .. } => req_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_lines_are_one_json_object_each() {
        let args = serde_json::json!({"text": "a\nb"});
        let line = Down::Invoke {
            req_id: "r1",
            tool: "echo",
            arguments: &args,
            timeout_ms: 5,
        }
        .line();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["type"], "invoke");
        assert_eq!(v["arguments"]["text"], "a\nb");
        assert_eq!(
            serde_json::from_slice::<Value>(&Down::Ping.line()).unwrap()["type"],
            "ping"
        );
    }

    #[test]
    fn up_messages_parse_and_refuse_unknown_fields() {
        let b: Batch = serde_json::from_str(
            r#"{"session":"s","messages":[{"type":"output","req_id":"r","data":"hi"},
                {"type":"error","req_id":"r","message":"boom"}]}"#,
        )
        .unwrap();
        assert_eq!(b.messages.len(), 2);
        assert_eq!(b.messages[1].req_id(), "r");
        assert!(matches!(&b.messages[1], Up::Error { code, .. } if code == "tool_error"));
        assert!(
            serde_json::from_str::<Up>(r#"{"type":"result","req_id":"r","result":1,"x":2}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Up>(r#"{"type":"nope","req_id":"r"}"#).is_err());
    }
}
