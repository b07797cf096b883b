//! Model name → [`Encoding`]: the built-in table (tiktoken's `model.py`
//! families plus Azure spellings) under operator overrides, with a fallback
//! for unknown models whose counts are then marked estimated.

use super::memo::Memo;
use super::Encoding;
use std::sync::Arc;

/// Built-in patterns: exact names, or prefixes ending in `*`.
const DEFAULTS: &[(&str, Encoding)] = {
    use Encoding::*;
    &[
        ("gpt-4o*", O200kBase),
        ("chatgpt-4o*", O200kBase),
        ("gpt-4.1*", O200kBase),
        ("gpt-4.5*", O200kBase),
        ("gpt-5*", O200kBase),
        ("o1*", O200kBase),
        ("o3*", O200kBase),
        ("o4*", O200kBase),
        // o200k_harmony: o200k_base's ordinary tokens plus specials.
        ("gpt-oss*", O200kBase),
        ("gpt-4*", Cl100kBase),
        ("gpt-3.5*", Cl100kBase),
        ("gpt-35*", Cl100kBase), // Azure: gpt-35-turbo
        ("text-embedding-ada-002", Cl100kBase),
        ("text-embedding-3-*", Cl100kBase),
        ("davinci-002", Cl100kBase),
        ("babbage-002", Cl100kBase),
        ("text-davinci-003", P50kBase),
        ("text-davinci-002", P50kBase),
        ("code-davinci-*", P50kBase),
        ("code-cushman-*", P50kBase),
        ("text-davinci-001", R50kBase),
        ("text-curie-001", R50kBase),
        ("text-babbage-001", R50kBase),
        ("text-ada-001", R50kBase),
        ("davinci", R50kBase),
        ("curie", R50kBase),
        ("babbage", R50kBase),
        ("ada", R50kBase),
        // tiktoken's own name for r50k_base.
        ("gpt2", R50kBase),
    ]
};

/// One pattern, lower-cased, `*` removed.
#[derive(Debug, Clone)]
struct Rule {
    text: String,
    prefix: bool,
    encoding: Encoding,
}

impl Rule {
    fn new(pattern: &str, encoding: Encoding) -> Rule {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.strip_suffix('*') {
            Some(p) => Rule {
                text: p.to_string(),
                prefix: true,
                encoding,
            },
            None => Rule {
                text: pattern,
                prefix: false,
                encoding,
            },
        }
    }

    fn matches(&self, model: &str) -> bool {
        if self.prefix {
            model.starts_with(&self.text)
        } else {
            model == self.text
        }
    }

    /// Longer patterns first; at equal length an exact name beats a prefix.
    fn rank(&self) -> (usize, bool) {
        (self.text.len(), !self.prefix)
    }
}

/// The best (longest, then exact, then first listed) rule matching any of
/// `names`.
fn best<'r>(rules: &'r [Rule], names: &[&str]) -> Option<&'r Rule> {
    let mut found: Option<&Rule> = None;
    for rule in rules {
        let better = match found {
            None => true,
            Some(f) => rule.rank() > f.rank(),
        };
        if better && names.iter().any(|n| rule.matches(n)) {
            found = Some(rule);
        }
    }
    found
}

/// Model name → encoding. Built-in defaults plus operator overrides.
#[derive(Debug, Clone)]
pub struct TokenizerMap {
    overrides: Vec<Rule>,
    defaults: Vec<Rule>,
    fallback: Encoding,
    /// Names already resolved (a gateway sees a handful of model names
    /// over and over; matching them against every rule costs ≈ 1 400
    /// instructions, a memo hit ≈ 40). Shared by clones: same rules.
    memo: Arc<Memo>,
}

/// The encoding chosen for a model; `estimated` when the model was unknown
/// and the fallback was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub encoding: Encoding,
    pub estimated: bool,
}

impl TokenizerMap {
    /// `overrides`: model patterns (exact name, or prefix ending in '*') →
    /// encoding; checked before the defaults, longest pattern wins.
    /// `fallback`: the encoding for models nobody knows; such counts are
    /// marked estimated.
    ///
    /// Matching ignores ASCII case. Besides the name as given, the defaults
    /// (and overrides) also try it without a `ft:` prefix (fine-tuned
    /// models, `ft:gpt-4o-mini:org::id`) and without a provider path
    /// (`openai/gpt-4o` → `gpt-4o`).
    pub fn new(overrides: &[(String, Encoding)], fallback: Encoding) -> Self {
        TokenizerMap {
            overrides: overrides.iter().map(|(p, e)| Rule::new(p, *e)).collect(),
            defaults: DEFAULTS.iter().map(|(p, e)| Rule::new(p, *e)).collect(),
            fallback,
            memo: Arc::new(Memo::new(256)),
        }
    }

    pub fn resolve(&self, model: &str) -> Resolved {
        let key = self.memo.key(model);
        if let Some(r) = self.memo.get(key).and_then(Resolved::unpack) {
            return r;
        }
        let r = self.match_rules(model);
        self.memo.put(key, r.pack());
        r
    }

    fn match_rules(&self, model: &str) -> Resolved {
        let full = model.trim().to_ascii_lowercase();
        let base = full.rsplit('/').next().unwrap_or(&full);
        let base = base.strip_prefix("ft:").unwrap_or(base);
        let names = [full.as_str(), base];
        let rule = best(&self.overrides, &names).or_else(|| best(&self.defaults, &names));
        match rule {
            Some(r) => Resolved {
                encoding: r.encoding,
                estimated: false,
            },
            None => Resolved {
                encoding: self.fallback,
                estimated: true,
            },
        }
    }
}

impl Resolved {
    /// As a memo value: the encoding's index + 1, and bit 8 for `estimated`.
    fn pack(self) -> u64 {
        let e = Encoding::ALL
            .iter()
            .position(|e| *e == self.encoding)
            .unwrap_or(0) as u64;
        (e + 1) | (u64::from(self.estimated) << 8)
    }

    fn unpack(v: u64) -> Option<Resolved> {
        let e = (v & 0xff).checked_sub(1)?;
        Some(Resolved {
            encoding: *Encoding::ALL.get(e as usize)?,
            estimated: v & 0x100 != 0,
        })
    }
}

impl Default for TokenizerMap {
    /// The built-in table, o200k_base for unknown models.
    fn default() -> Self {
        TokenizerMap::new(&[], Encoding::O200kBase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    fn known(e: Encoding) -> Resolved {
        Resolved {
            encoding: e,
            estimated: false,
        }
    }

    #[test]
    fn tokens_models_defaults() {
        let m = TokenizerMap::new(&[], R50kBase);
        for model in [
            "gpt-4o",
            "gpt-4o-mini-2024-07-18",
            "chatgpt-4o-latest",
            "gpt-4.1-nano",
            "gpt-4.5-preview",
            "gpt-5",
            "gpt-5-mini",
            "o1",
            "o1-mini",
            "o3-mini",
            "o4-mini",
            "GPT-4O",
            "ft:gpt-4o-mini-2024-07-18:acme::abc123",
            "openai/gpt-4o",
        ] {
            assert_eq!(m.resolve(model), known(O200kBase), "{model}");
        }
        for model in [
            "gpt-4",
            "gpt-4-0613",
            "gpt-4-turbo",
            "gpt-4-32k",
            "gpt-3.5-turbo",
            "gpt-3.5-turbo-0125",
            "gpt-35-turbo",
            "gpt-35-turbo-16k",
            "text-embedding-ada-002",
            "text-embedding-3-small",
            "text-embedding-3-large",
            "ft:gpt-3.5-turbo-0613:org::id",
        ] {
            assert_eq!(m.resolve(model), known(Cl100kBase), "{model}");
        }
        assert_eq!(m.resolve("text-davinci-003"), known(P50kBase));
        assert_eq!(m.resolve("davinci"), known(R50kBase));
        assert_eq!(m.resolve("gpt2"), known(R50kBase));
        assert_eq!(m.resolve("davinci-002"), known(Cl100kBase));
    }

    #[test]
    fn tokens_models_fallback_is_estimated() {
        let m = TokenizerMap::new(&[], Cl100kBase);
        for model in [
            "llama-3.1-70b",
            "claude-3-5-sonnet",
            "",
            "gpt",
            "text-embedding-ada",
        ] {
            let r = m.resolve(model);
            assert_eq!(r.encoding, Cl100kBase, "{model}");
            assert!(r.estimated, "{model}");
        }
        assert!(TokenizerMap::default().resolve("mistral-large").estimated);
    }

    #[test]
    fn tokens_models_overrides() {
        let o = |p: &str, e| (p.to_string(), e);
        let m = TokenizerMap::new(
            &[
                o("gpt-4o-legacy", Cl100kBase),
                o("my-deploy*", Cl100kBase),
                o("my-deploy-4o*", O200kBase),
                o("llama*", O200kBase),
                o("gpt-4*", P50kBase),
            ],
            R50kBase,
        );
        // Exact override beats the default gpt-4o*.
        assert_eq!(m.resolve("gpt-4o-legacy"), known(Cl100kBase));
        // Longest override wins.
        assert_eq!(m.resolve("my-deploy-4o-east"), known(O200kBase));
        assert_eq!(m.resolve("my-deploy-35"), known(Cl100kBase));
        // Overrides are checked before defaults, even shorter ones.
        assert_eq!(m.resolve("gpt-4o"), known(P50kBase));
        // A covered model is no longer estimated.
        assert_eq!(m.resolve("llama-3-8b"), known(O200kBase));
        assert_eq!(m.resolve("gpt-3.5-turbo"), known(Cl100kBase));
        assert!(m.resolve("mistral").estimated);
    }

    /// The memo answers what the rules answer, on the first call and on
    /// every later one, for known, overridden and unknown names alike.
    #[test]
    fn tokens_models_memo_agrees_with_rules() {
        let m = TokenizerMap::new(&[("llama*".to_string(), P50kBase)], Cl100kBase);
        let names = [
            "gpt-4o",
            "GPT-4",
            "llama-3",
            "mistral",
            "",
            "ft:gpt-4o-mini:x",
            "o3",
        ];
        for _ in 0..3 {
            for name in names {
                assert_eq!(m.resolve(name), m.match_rules(name), "{name}");
            }
        }
        for e in Encoding::ALL {
            for estimated in [false, true] {
                let r = Resolved {
                    encoding: e,
                    estimated,
                };
                assert_eq!(Resolved::unpack(r.pack()), Some(r));
            }
        }
        assert_eq!(Resolved::unpack(0), None);
    }
}
