//! How many JSON values a body would become once parsed, counted on the
//! raw bytes before parsing ([`values_over`]). A parsed value costs at
//! least 32 bytes however short its text is (`[0,0,…]` is two bytes per
//! value): bounding the count bounds the memory a request body can take
//! once parsed, which its byte size alone does not.

/// What [`scan`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// JSON values, members' keys included (an upper bound).
    pub values: usize,
    /// Object members (`:` outside strings): exact for valid JSON.
    pub members: usize,
}

/// Whether `body` holds more than `limit` JSON values (see [`scan`]).
pub fn values_over(body: &[u8], limit: usize) -> bool {
    scan(body, limit).is_none()
}

/// Counts `body`'s values (one per `[`, `{`, `,` and `:` outside strings,
/// plus one) and members without parsing; None as soon as the values pass
/// `limit`. Text that is not JSON gets some count; the parser judges it.
pub fn scan(body: &[u8], limit: usize) -> Option<Shape> {
    let mut count = 1usize;
    let mut members = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                // Skip the string: to the next unescaped quote.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[i.min(body.len())..]) {
                        None => return shape(count, members, limit),
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
                members += usize::from(body[i] == b':');
                if count > limit {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    shape(count, members, limit)
}

fn shape(values: usize, members: usize, limit: usize) -> Option<Shape> {
    (values <= limit).then_some(Shape { values, members })
}

/// Members of every object in `v`: fewer than [`Shape::members`] of its
/// text means duplicate keys were collapsed.
pub fn members(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => a.iter().map(members).sum(),
        serde_json::Value::Object(o) => o.len() + o.values().map(members).sum::<usize>(),
        _ => 0,
    }
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
    fn duplicate_keys_show_as_missing_members() {
        for (text, dup) in [
            (r#"{"a":1,"b":{"c":2}}"#, false),
            (r#"{"a":1,"a":2}"#, true),
            (r#"{"m":[{"x":1},{"x":2,"x":3}]}"#, true),
            (r#"{"a":"x:y","b":"\":"}"#, false),
        ] {
            let shape = super::scan(text.as_bytes(), 100).unwrap();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(super::members(&v) != shape.members, dup, "{text}");
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
        /// Never fewer than the values serde_json builds, never panics;
        /// members are exact when no key repeats.
        #[test]
        fn bounds_what_the_parser_builds(v in arb_json()) {
            let text = serde_json::to_vec(&v).unwrap();
            let n = parsed_values(&v);
            prop_assert!(values_over(&text, n - 1));
            prop_assert!(!values_over(&text, 2 * n + 1));
            prop_assert_eq!(super::scan(&text, usize::MAX).unwrap().members, super::members(&v));
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
