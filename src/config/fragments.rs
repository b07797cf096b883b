//! The admin API's "nginx configs" as gateway setting fragments. Sluice has no
//! nginx: a fragment's `config_content` is read as nginx directives
//! (`name args;`) and each directive with a meaning in Sluice's data plane
//! is applied over the YAML's settings (active fragments in id order, later
//! ones win). A directive that Sluice cannot honour is refused by name, so
//! no fragment is stored that would do nothing.
//!
//! | directive | setting |
//! | --- | --- |
//! | `client_max_body_size SIZE` | `limits.max_body_bytes` |
//! | `proxy_connect_timeout TIME` | `timeouts.connect_ms` |
//! | `proxy_read_timeout TIME` | `timeouts.first_byte_ms` and `timeouts.idle_ms` |
//! | `keepalive_timeout TIME` | `timeouts.client_keepalive_s` (0 = no keep-alive) |
//! | `gzip on\|off` | `compression.gzip` |
//! | `gzip_comp_level 1..9` | `compression.level` |
//! | `gzip_types TYPE...` | `compression.types` (`*` = any) |
//! | `gzip_min_length SIZE` | `compression.min_length` |

use super::{Config, Problem};
use serde::{Deserialize, Serialize};

/// One stored fragment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NginxConfig {
    /// Numeric id.
    #[serde(default)]
    pub id: u64,
    /// Group the fragment belongs to (`http`, `server`…): a label for listing.
    pub config_type: String,
    /// Display name, unique.
    pub config_name: String,
    /// nginx directives, e.g. `client_max_body_size 8m; proxy_read_timeout 30s;`.
    pub config_content: String,
    /// Inactive fragments are stored but not applied.
    #[serde(default = "super::model::yes", deserialize_with = "super::model::flag")]
    pub is_active: bool,
}

/// A directive Sluice applies, with its parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    ClientMaxBodySize(usize),
    ProxyConnectTimeoutMs(u64),
    ProxyReadTimeoutMs(u64),
    KeepaliveTimeoutS(u64),
    Gzip(bool),
    GzipCompLevel(u32),
    GzipTypes(Vec<String>),
    GzipMinLength(usize),
}

/// Parses `content` into directives; the error names the directive.
pub fn parse(content: &str) -> Result<Vec<Directive>, String> {
    let mut out = Vec::new();
    let text: String = content
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("config_content: no directive (write e.g. `client_max_body_size 8m;`)".into());
    }
    if let Some(pos) = trimmed.find(['{', '}']) {
        let name = trimmed[..pos]
            .rsplit(';')
            .next()
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("{");
        return Err(format!(
            "{name}: blocks are not supported, only plain directives"
        ));
    }
    if !trimmed.ends_with(';') {
        return Err("config_content: every directive must end with `;`".into());
    }
    for stmt in trimmed.split(';') {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        let Some((name, args)) = words.split_first() else {
            continue;
        };
        let one = || -> Result<&str, String> {
            match args {
                [v] => Ok(v),
                _ => Err(format!("{name}: takes exactly one value")),
            }
        };
        let d = match *name {
            "client_max_body_size" => Directive::ClientMaxBodySize(size(name, one()?)?),
            "proxy_connect_timeout" => Directive::ProxyConnectTimeoutMs(positive_ms(name, one()?)?),
            "proxy_read_timeout" => Directive::ProxyReadTimeoutMs(positive_ms(name, one()?)?),
            "keepalive_timeout" => {
                let ms = time_ms(name, one()?)?;
                if ms % 1000 != 0 {
                    return Err(format!("{name}: whole seconds only (e.g. 65s)"));
                }
                Directive::KeepaliveTimeoutS(ms / 1000)
            }
            "gzip" => match one()? {
                "on" => Directive::Gzip(true),
                "off" => Directive::Gzip(false),
                v => return Err(format!("{name}: {v:?}: write on or off")),
            },
            "gzip_comp_level" => match one()?.parse::<u32>() {
                Ok(l @ 1..=9) => Directive::GzipCompLevel(l),
                _ => return Err(format!("{name}: a level from 1 to 9")),
            },
            "gzip_types" => {
                if args.is_empty() {
                    return Err(format!("{name}: at least one media type (or *)"));
                }
                for t in args {
                    let ok = *t == "*"
                        || t.split_once('/').is_some_and(|(a, b)| {
                            !a.is_empty() && !b.is_empty() && !b.contains('/')
                        });
                    if !ok {
                        return Err(format!("{name}: {t:?} is not a media type (e.g. application/json) or *"));
                    }
                }
                Directive::GzipTypes(args.iter().map(|t| t.to_ascii_lowercase()).collect())
            }
            "gzip_min_length" => {
                let v = one()?;
                let n = if v == "0" { 0 } else { size(name, v)? };
                Directive::GzipMinLength(n)
            }
            other => {
                return Err(format!(
                    "{other}: unsupported directive (Sluice applies client_max_body_size, proxy_connect_timeout, proxy_read_timeout, keepalive_timeout, gzip, gzip_comp_level, gzip_types, gzip_min_length)"
                ))
            }
        };
        out.push(d);
    }
    Ok(out)
}

/// nginx size: bytes, or with `k`/`m`/`g`.
fn size(name: &str, v: &str) -> Result<usize, String> {
    let bad = || format!("{name}: {v:?} is not a size (e.g. 512k, 8m, 1g)");
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&v[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    let n: usize = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!(
            "{name}: 0 (no limit) is not supported; give the largest body to accept"
        ));
    }
    n.checked_mul(mult).ok_or_else(bad)
}

/// nginx time: `500ms`, `30s`, `5m`, `1h`, `1m30s`, or bare seconds.
fn time_ms(name: &str, v: &str) -> Result<u64, String> {
    let bad = || format!("{name}: {v:?} is not a time (e.g. 500ms, 30s, 5m)");
    if let Ok(secs) = v.parse::<u64>() {
        return secs.checked_mul(1000).ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(mult)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

fn positive_ms(name: &str, v: &str) -> Result<u64, String> {
    match time_ms(name, v)? {
        0 => Err(format!("{name}: must be greater than 0")),
        ms => Ok(ms),
    }
}

/// Applies the active fragments (in id order) over `config`'s settings;
/// a stored fragment that no longer parses is reported, not skipped.
pub fn apply(fragments: &[NginxConfig], config: &mut Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut active: Vec<&NginxConfig> = fragments.iter().filter(|f| f.is_active).collect();
    active.sort_by_key(|f| f.id);
    for f in active {
        match parse(&f.config_content) {
            Ok(directives) => directives.into_iter().for_each(|d| set(d, config)),
            Err(e) => problems.push(Problem::new(format!("nginx_configs[id={}]", f.id), e)),
        }
    }
    problems
}

fn set(d: Directive, c: &mut Config) {
    match d {
        Directive::ClientMaxBodySize(n) => c.limits.max_body_bytes = n,
        Directive::ProxyConnectTimeoutMs(ms) => c.timeouts.connect_ms = ms,
        Directive::ProxyReadTimeoutMs(ms) => {
            c.timeouts.first_byte_ms = ms;
            c.timeouts.idle_ms = ms;
        }
        Directive::KeepaliveTimeoutS(s) => c.timeouts.client_keepalive_s = Some(s),
        Directive::Gzip(on) => c.compression.gzip = on,
        Directive::GzipCompLevel(l) => c.compression.level = l,
        Directive::GzipTypes(t) => c.compression.types = t,
        Directive::GzipMinLength(n) => c.compression.min_length = n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_applied_directives() {
        let d = parse("client_max_body_size 8m;\nproxy_read_timeout 1m30s; # comment\nproxy_connect_timeout 500ms; keepalive_timeout 65;").unwrap();
        assert_eq!(
            d,
            vec![
                Directive::ClientMaxBodySize(8 << 20),
                Directive::ProxyReadTimeoutMs(90_000),
                Directive::ProxyConnectTimeoutMs(500),
                Directive::KeepaliveTimeoutS(65),
            ]
        );
        assert_eq!(
            parse("keepalive_timeout 0;").unwrap(),
            vec![Directive::KeepaliveTimeoutS(0)]
        );
    }

    #[test]
    fn refuses_what_it_cannot_apply_by_name() {
        assert_eq!(
            parse("gzip on; gzip_comp_level 6; gzip_types application/json text/plain; gzip_min_length 1k;").unwrap(),
            vec![
                Directive::Gzip(true),
                Directive::GzipCompLevel(6),
                Directive::GzipTypes(vec!["application/json".into(), "text/plain".into()]),
                Directive::GzipMinLength(1024),
            ]
        );
        for (text, name) in [
            ("gzip maybe;", "gzip"),
            ("gzip_comp_level 10;", "gzip_comp_level"),
            ("gzip_types json;", "gzip_types"),
            ("gzip_vary on;", "gzip_vary"),
            ("worker_processes 4;", "worker_processes"),
            ("client_max_body_size 0;", "client_max_body_size"),
            ("client_max_body_size lots;", "client_max_body_size"),
            ("proxy_read_timeout 0s;", "proxy_read_timeout"),
            ("proxy_read_timeout 5x;", "proxy_read_timeout"),
            ("keepalive_timeout 1500ms;", "keepalive_timeout"),
            ("proxy_read_timeout 5s 6s;", "proxy_read_timeout"),
            ("location / { }", "location"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(name), "{text}: {e}");
        }
        assert!(parse("").is_err());
        assert!(parse("proxy_read_timeout 5s").is_err());
    }
}
