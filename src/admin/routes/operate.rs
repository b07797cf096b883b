//! The routes operators use beyond the entities (and that the console at
//! `/ui` reads): who is calling and the console's sign-in, the audit log,
//! the revision history with diff and restore, and the live views of
//! traffic, upstreams, the catalog and the limits.

use super::*;
use crate::admin::api::{history, observe};

const READ_QUERY: &[u16] = &[400];
const HISTORY_READ: &[u16] = &[400, 503];
const RESTORE: &[u16] = &[400, 404, 409, 503];

const AUDIT_QUERY: &[(&str, &str)] = &[
    ("entity", "只列出该类实体 (namespaces, rules, …) 的变更"),
    ("entity_id", "只列出该实体 id 的变更（需同时给出 entity）"),
    ("since", "只列出该时间之后的变更：Unix 秒或 RFC 3339"),
    (
        "before",
        "只列出 id 小于该值的条目（下一页：上一页的 next_before）",
    ),
    ("limit", "条数，1–500，默认 100"),
];
const REVISIONS_QUERY: &[(&str, &str)] = &[
    (
        "before",
        "只列出小于该修订号的修订（下一页：上一页的 next_before）",
    ),
    ("limit", "条数，1–500，默认 50"),
];
const DIFF_QUERY: &[(&str, &str)] = &[
    ("from", "起始修订（默认 to - 1）"),
    ("to", "目标修订（默认当前修订）"),
];

pub(super) const OPERATE: &[Route] = &[
    Route::new(
        GET,
        "/api/v1/whoami",
        "console",
        "当前调用者：管理令牌名 (token:<name>) 或管理员用户 (user:<email>)",
        &Direct(history::whoami),
    ),
    Route::new(
        POST,
        "/api/v1/auth/login",
        "console",
        "管理员用户登录（role: admin）：返回访问令牌，用作管理 API 的 Bearer 令牌",
        &Async(history::login),
    )
    .open()
    .errors(&[400, 401, 403, 404, 413, 415, 429, 503]),
    Route::new(
        GET,
        "/api/v1/audit",
        "history",
        "审计日志：谁在何时变更了什么（实体、id、操作、变更前后，密钥已脱敏），新的在前",
        &Async(history::audit),
    )
    .errors(HISTORY_READ)
    .query(AUDIT_QUERY),
    Route::new(
        GET,
        "/api/v1/revisions",
        "history",
        "配置修订历史（保留最近的修订），新的在前",
        &Async(history::revisions),
    )
    .errors(HISTORY_READ)
    .query(REVISIONS_QUERY),
    Route::new(
        GET,
        "/api/v1/revisions/diff",
        "history",
        "两个修订之间的实体变更（脱敏）",
        &Async(history::diff),
    )
    .errors(&[400, 404, 503])
    .query(DIFF_QUERY),
    Route::new(
        POST,
        "/api/v1/revisions/{revision}/restore",
        "history",
        "恢复到修订 n：生成一个配置与 n 相同的新修订（API 密钥、用户、Agent 令牌保持当前状态），与任何变更一样校验、审计并同步到所有实例",
        &Async(history::restore),
    )
    .errors(RESTORE),
    Route::new(
        GET,
        "/api/v1/overview",
        "console",
        "概览：最近 60 分钟每分钟的请求、错误、p95 延迟、token 与花费，总计、实例与健康状态（本实例的数据）",
        &Direct(observe::overview),
    )
    .errors(READ_QUERY),
    Route::new(
        GET,
        "/api/v1/upstreams",
        "console",
        "上游池及其服务器：健康、熔断、在途请求",
        &Direct(observe::upstreams),
    ),
    Route::new(
        GET,
        "/api/v1/catalog",
        "console",
        "模型目录：部署、路由策略、实时延迟与成功率、bandit 报告",
        &Direct(observe::catalog),
    ),
    Route::new(
        GET,
        "/api/v1/limits",
        "console",
        "每条限流规则：限额、窗口、本实例在窗口内的用量与剩余",
        &Direct(observe::limits),
    ),
];
