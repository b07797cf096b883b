//! How many JSON values a body would become once parsed, counted on the
//! raw bytes before parsing ([`values_over`]). A parsed value costs at
//! least 32 bytes however short its text is (`[0,0,…]` is two bytes per
//! value): bounding the count bounds the memory a request body can take
//! once parsed, which its byte size alone does not.

/// Whether `body` holds more than `limit` JSON values (members' keys
/// included), counted without parsing: one per `[`, `{`, `,` and `:`
/// outside strings, plus one. Stops as soon as the count passes `limit`.
/// Text that is not JSON gets some count; the parser judges it later.
pub fn values_over(body: &[u8], limit: usize) -> bool {
    let mut count = 1usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                // Skip the string: to the next unescaped quote.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[i.min(body.len())..]) {
                        None => return count > limit,
                        Some(k) if body[i + k] == b'\\' => i += k + 2,
                        Some(k) => {
                            i += k;
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' | b',' | b':' => {
                count += 1;
                if count > limit {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    count > limit
}

#[cfg(test)]
mod tests {
    use super::values_over;
    use proptest::prelude::*;

    /// Values and keys serde_json allocates for `text`.
    fn parsed_values(v: &serde_json::Value) -> usize {
        1 + match v {
            serde_json::Value::Array(a) => a.iter().map(parsed_values).sum(),
            serde_json::Value::Object(o) => o.values().map(|v| 1 + parsed_values(v)).sum(),
            _ => 0,
        }
    }

    #[test]
    fn counts_structure_not_string_contents() {
        assert!(!values_over(b"[0,0,0]", 4));
        assert!(values_over(b"[0,0,0]", 3));
        assert!(!values_over(br#"{"a":"[,,,{:}]","b":2}"#, 5));
        assert!(!values_over(br#"{"a":"x\",\\","b":[]}"#, 6));
        assert!(values_over(br#"{"a":"x\",\\","b":[1,2]}"#, 6));
        // Unterminated strings and trailing escapes end the scan.
        assert!(!values_over(br#"["abc,,,"#, 2));
        assert!(!values_over(b"\"\\", 1));
        let big = format!("[{}0]", "0,".repeat(1_000_000));
        assert!(values_over(big.as_bytes(), 500_000));
    }

    proptest! {
        /// Never fewer than the values serde_json builds, never panics.
        #[test]
        fn bounds_what_the_parser_builds(v in arb_json()) {
            let text = serde_json::to_vec(&v).unwrap();
            let n = parsed_values(&v);
            prop_assert!(values_over(&text, n - 1));
            prop_assert!(!values_over(&text, 2 * n + 1));
        }

        #[test]
        fn any_bytes(b in proptest::collection::vec(any::<u8>(), 0..256), limit in 0usize..64) {
            let _ = values_over(&b, limit);
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z\",\\\\:\\[\\]{}]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z,:]{0,4}", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
