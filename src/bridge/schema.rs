//! Tool arguments checked against the tool's JSON Schema before an
//! invocation is sent: the schema is compiled once, when the agent
//! announces the tool, and a violation names the field.

use serde_json::Value;

/// A tool's compiled argument schema.
pub struct ArgSchema(jsonschema::Validator);

impl ArgSchema {
    /// Compiles `schema`; `Err` says why it is not a usable schema.
    /// Remote references are not fetched (no network from a tool's schema).
    pub fn compile(schema: &Value) -> Result<ArgSchema, String> {
        if !schema.is_object() {
            return Err("input_schema must be a JSON object".into());
        }
        // Patterns run on the `regex` engine (linear time, bounded size): a
        // tool's schema cannot make checking a client's arguments slow.
        jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(1 << 20))
            .build(schema)
            .map(ArgSchema)
            .map_err(|e| e.to_string())
    }

    /// `Ok` when `args` satisfy the schema; otherwise the first violation,
    /// naming the field (a JSON pointer, `/` for the whole object).
    pub fn check(&self, args: &Value) -> Result<(), String> {
        match self.0.iter_errors(args).next() {
            None => Ok(()),
            Some(e) => {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                Err(format!("arguments{at}: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_name_the_field() {
        let s = ArgSchema::compile(&json!({
            "type": "object",
            "properties": {"text": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
            "required": ["text"],
            "additionalProperties": false
        }))
        .unwrap();
        assert!(s.check(&json!({"text": "hi", "n": 2})).is_ok());
        let e = s.check(&json!({"text": 5})).unwrap_err();
        assert!(e.starts_with("arguments/text:"), "{e}");
        let e = s.check(&json!({"text": "a", "n": 0})).unwrap_err();
        assert!(e.starts_with("arguments/n:"), "{e}");
        let e = s.check(&json!({})).unwrap_err();
        assert!(e.starts_with("arguments/:") && e.contains("text"), "{e}");
        assert!(s.check(&json!({"text": "a", "x": 1})).is_err());
    }

    #[test]
    fn patterns_run_in_linear_time() {
        // Catastrophic for a backtracking engine; immediate for `regex`.
        let s = ArgSchema::compile(&json!({
            "type": "object",
            "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}
        }))
        .unwrap();
        let input = format!("{}!", "a".repeat(40_000));
        let t = std::time::Instant::now();
        assert!(s.check(&json!({"x": input})).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        // Look-around (not in `regex`) is refused when the tool is announced.
        assert!(ArgSchema::compile(&json!({"properties": {"x": {"pattern": "(?=a)a"}}})).is_err());
    }

    #[test]
    fn unusable_schemas_are_refused() {
        assert!(ArgSchema::compile(&json!("string")).is_err());
        assert!(ArgSchema::compile(&json!({"type": 12})).is_err());
        assert!(ArgSchema::compile(&json!({"type": "object"})).is_ok());
    }
}
