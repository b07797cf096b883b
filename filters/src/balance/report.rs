//! The internal channel's bandit routing report, `GET /internal/v1/bandit/report`: a
//! summary plus one item per arm, optionally filtered by `capability`,
//! `model` and `channel` (exact matches). The admin/internal handler
//! snapshots each arm's [`ArmStats`] and calls [`build_report`]; this module
//! only shapes the JSON.
//!
//! ```json
//! {"summary": {"total_arms": 5, "total_trials": 10000, "overall_success_rate": 0.95},
//!  "items": [{"arm_id": "provider-openai-gpt4", "capability": "chat", "model": "gpt-4",
//!             "channel": "external", "total_trials": 5000, "successes": 4800,
//!             "success_rate": 0.96, "avg_latency_ms": 1200,
//!             "last_selected_at": "2026-01-06T10:30:00Z"}]}
//! ```

use serde::{Deserialize, Serialize};

use super::stats::ArmStats;

/// What identifies an arm in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmLabels {
    /// Stable arm id, e.g. `provider-openai-gpt4`.
    pub arm_id: String,
    /// Capability, e.g. `chat`, `embeddings`.
    pub capability: String,
    /// Model the arm serves.
    pub model: String,
    /// `internal` or `external`.
    pub channel: String,
    /// Instances whose figures the arm's statistics hold (this one and
    /// the other live instances of the fleet that published them).
    pub instances: u32,
}

/// Query filters; an absent field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportFilter {
    pub capability: Option<String>,
    pub model: Option<String>,
    pub channel: Option<String>,
}

impl ReportFilter {
    /// Whether `labels` pass every given filter.
    pub fn matches(&self, labels: &ArmLabels) -> bool {
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        ok(&self.capability, &labels.capability)
            && ok(&self.model, &labels.model)
            && ok(&self.channel, &labels.channel)
    }
}

/// The report's `summary`, over the items shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub total_arms: u64,
    pub total_trials: u64,
    /// Total successes / total trials; 0 when there were no trials.
    pub overall_success_rate: f64,
}

/// One arm of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportItem {
    pub arm_id: String,
    pub capability: String,
    pub model: String,
    pub channel: String,
    /// Instances whose figures are counted in it (1: this one alone).
    pub instances: u32,
    /// Completed attempts.
    pub total_trials: u64,
    pub successes: u64,
    /// successes / total_trials; 0 when untried.
    pub success_rate: f64,
    /// EWMA time to first byte, rounded; `null` before the first sample.
    pub avg_latency_ms: Option<u64>,
    /// RFC 3339 UTC to the second; `null` if never selected.
    pub last_selected_at: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanditReport {
    pub summary: ReportSummary,
    pub items: Vec<ReportItem>,
}

/// Builds the report from `(labels, stats)` pairs, keeping the input order
/// and only the arms that pass `filter`.
pub fn build_report<'a>(
    arms: impl IntoIterator<Item = (&'a ArmLabels, &'a ArmStats)>,
    filter: &ReportFilter,
) -> BanditReport {
    let items: Vec<ReportItem> = arms
        .into_iter()
        .filter(|(labels, _)| filter.matches(labels))
        .map(|(labels, stats)| item(labels, stats))
        .collect();
    let total_trials: u64 = items.iter().map(|i| i.total_trials).sum();
    let successes: u64 = items.iter().map(|i| i.successes).sum();
    BanditReport {
        summary: ReportSummary {
            total_arms: items.len() as u64,
            total_trials,
            overall_success_rate: ratio(successes, total_trials),
        },
        items,
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn item(labels: &ArmLabels, stats: &ArmStats) -> ReportItem {
    ReportItem {
        arm_id: labels.arm_id.clone(),
        capability: labels.capability.clone(),
        model: labels.model.clone(),
        channel: labels.channel.clone(),
        instances: labels.instances,
        total_trials: stats.trials,
        successes: stats.successes,
        success_rate: ratio(stats.successes, stats.trials),
        avg_latency_ms: stats
            .ewma_ttfb_ms
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.round() as u64),
        last_selected_at: stats.last_selected_at_ms.map(rfc3339_utc),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the Unix epoch (seconds
/// truncated).
pub fn rfc3339_utc(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(ms / 1_000);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(id: &str, model: &str, channel: &str) -> ArmLabels {
        ArmLabels {
            arm_id: id.to_string(),
            capability: "chat".to_string(),
            model: model.to_string(),
            channel: channel.to_string(),
            instances: 1,
        }
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_767_695_400_999), "2026-01-06T10:30:00Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(4_107_542_399_000), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn report_matches_seed_shape() {
        let l = labels("provider-openai-gpt4", "gpt-4", "external");
        let s = ArmStats {
            trials: 5000,
            successes: 4800,
            ewma_ttfb_ms: Some(1199.6),
            last_selected_at_ms: Some(1_767_695_400_000),
            ..ArmStats::default()
        };
        let r = build_report([(&l, &s)], &ReportFilter::default());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "summary": {"total_arms": 1, "total_trials": 5000, "overall_success_rate": 0.96},
                "items": [{
                    "arm_id": "provider-openai-gpt4",
                    "capability": "chat",
                    "model": "gpt-4",
                    "channel": "external",
                    "instances": 1,
                    "total_trials": 5000,
                    "successes": 4800,
                    "success_rate": 0.96,
                    "avg_latency_ms": 1200,
                    "last_selected_at": "2026-01-06T10:30:00Z"
                }]
            })
        );
    }

    #[test]
    fn filters_and_summary_over_shown_arms() {
        let arms = [
            labels("a", "gpt-4", "external"),
            labels("b", "gpt-4", "internal"),
            labels("c", "claude-3-opus", "external"),
        ];
        let stats = [
            ArmStats {
                trials: 10,
                successes: 9,
                ..ArmStats::default()
            },
            ArmStats {
                trials: 10,
                successes: 5,
                ..ArmStats::default()
            },
            ArmStats::default(),
        ];
        let all = build_report(arms.iter().zip(stats.iter()), &ReportFilter::default());
        assert_eq!(all.summary.total_arms, 3);
        assert_eq!(all.summary.total_trials, 20);
        assert_eq!(all.summary.overall_success_rate, 0.7);
        let untried = &all.items[2];
        assert_eq!(untried.success_rate, 0.0);
        assert_eq!(untried.avg_latency_ms, None);
        assert_eq!(untried.last_selected_at, None);

        let f: ReportFilter =
            serde_json::from_str(r#"{"model":"gpt-4","channel":"external"}"#).unwrap();
        let r = build_report(arms.iter().zip(stats.iter()), &f);
        let ids: Vec<&str> = r.items.iter().map(|i| i.arm_id.as_str()).collect();
        assert_eq!(ids, vec!["a"]);
        assert_eq!(r.summary.overall_success_rate, 0.9);

        let none = ReportFilter {
            capability: Some("embeddings".to_string()),
            ..ReportFilter::default()
        };
        let r = build_report(arms.iter().zip(stats.iter()), &none);
        assert_eq!(r.summary.total_arms, 0);
        assert_eq!(r.summary.overall_success_rate, 0.0);
    }
}
