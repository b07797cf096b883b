//! `RedisCounterStore` against a real Redis (`SLUICE_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Every test uses its own random key prefix and
//! deletes its keys at the end.

use crate::common::{eventually, eventually_blocking, refused_port};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use sluice::store::RedisCounterStore;
use sluice_filters::limits::store::{Admission, Check, CheckStatus, CounterStore, Settle};

const DAY: u64 = 86_400_000;
const TIMEOUT: Duration = Duration::from_secs(2);

fn redis_url() -> String {
    std::env::var("SLUICE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique_prefix() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "sluice-test:{}-{nanos}-{}:",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on its own prefix; deletes the prefix's keys when dropped.
struct TestStore {
    store: RedisCounterStore,
    prefix: String,
}

impl TestStore {
    async fn new() -> Self {
        Self::with_prefix(unique_prefix()).await
    }

    async fn with_prefix(prefix: String) -> Self {
        let store = RedisCounterStore::connect(&redis_url(), &prefix, TIMEOUT)
            .await
            .unwrap();
        assert!(store.ping().await, "redis at {} not reachable", redis_url());
        Self { store, prefix }
    }

    async fn cleanup(&self) {
        let client = Client::new(Config::from_url(&redis_url()).unwrap(), None, None, None);
        client.init().await.unwrap();
        let _: i64 = client
            .eval(
                "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do \
                 n = n + redis.call('DEL', k) end return n",
                Vec::<String>::new(),
                vec![self.prefix.clone()],
            )
            .await
            .unwrap();
        client.quit().await.unwrap();
    }
}

impl std::ops::Deref for TestStore {
    type Target = RedisCounterStore;
    fn deref(&self) -> &RedisCounterStore {
        &self.store
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn window(key: &str, limit: u64, window_ms: u64, sliding: bool) -> Check {
    Check::Window {
        key: key.into(),
        limit,
        window_ms,
        sliding,
        cost: 1,
    }
}

fn tokens(key: &str, limit: u64, need: u64, want: u64) -> Check {
    Check::Tokens {
        key: key.into(),
        limit,
        window_ms: DAY,
        need,
        want,
        money: false,
    }
}

fn lease(key: &str, limit: u64, id: &str, lease_ms: u64) -> Check {
    Check::Concurrency {
        key: key.into(),
        limit,
        lease_id: id.into(),
        lease_ms,
    }
}

async fn admit1(store: &RedisCounterStore, check: Check) -> CheckStatus {
    let a = store.admit(&[check]).await.unwrap();
    assert_eq!(a.statuses.len(), 1);
    assert_eq!(a.admitted, a.statuses[0].passed);
    a.statuses[0]
}

#[tokio::test]
async fn fixed_window_admits_exactly_limit() {
    let s = TestStore::new().await;
    let mut start = None;
    for i in 0..5u64 {
        let st = admit1(&s, window("fw", 5, DAY, false)).await;
        assert!(st.passed, "call {i}");
        assert_eq!((st.limit, st.remaining, st.retry_after_ms), (5, 4 - i, 0));
        assert!(st.reset_ms > 0 && st.reset_ms <= DAY);
        assert_eq!(st.window_start_ms % DAY, 0);
        assert!(st.window_start_ms <= now_ms() && now_ms() - st.window_start_ms < DAY + 1000);
        assert_eq!(*start.get_or_insert(st.window_start_ms), st.window_start_ms);
    }
    let denied = admit1(&s, window("fw", 5, DAY, false)).await;
    assert!(!denied.passed);
    assert_eq!((denied.limit, denied.remaining, denied.granted), (5, 0, 0));
    assert!(denied.retry_after_ms > 0 && denied.retry_after_ms <= DAY);
    assert_eq!(denied.retry_after_ms, denied.reset_ms);
    // The reset lands on the next aligned boundary.
    let end = now_ms() + denied.reset_ms;
    assert!(end.abs_diff(denied.window_start_ms + DAY) < 1000);
    // Other keys are independent.
    assert!(admit1(&s, window("fw2", 5, DAY, false)).await.passed);
    s.cleanup().await;
}

#[tokio::test]
async fn sliding_window_counts_admissions_and_frees_them() {
    let s = TestStore::new().await;
    for i in 0..3u64 {
        let st = admit1(&s, window("sw", 3, DAY, true)).await;
        assert!(st.passed);
        assert_eq!(
            (st.remaining, st.retry_after_ms, st.window_start_ms),
            (2 - i, 0, 0)
        );
    }
    let denied = admit1(&s, window("sw", 3, DAY, true)).await;
    assert!(!denied.passed);
    assert_eq!(denied.remaining, 0);
    assert!(denied.retry_after_ms > DAY - 5000 && denied.retry_after_ms <= DAY);

    // A short window: the denial says when the oldest admission leaves.
    let w = 300;
    let first = admit1(&s, window("short", 2, w, true)).await;
    assert!(first.passed);
    assert!(admit1(&s, window("short", 2, w, true)).await.passed);
    let denied = admit1(&s, window("short", 2, w, true)).await;
    assert!(!denied.passed && denied.retry_after_ms > 0 && denied.retry_after_ms <= w);
    tokio::time::sleep(Duration::from_millis(denied.retry_after_ms + 2)).await;
    let again = admit1(&s, window("short", 2, w, true)).await;
    assert!(again.passed, "{again:?}");
    s.cleanup().await;
}

#[tokio::test]
async fn bucket_burst_then_denial_then_refill() {
    let s = TestStore::new().await;
    let bucket = |rate, burst| Check::Bucket {
        key: "tb".into(),
        rate_per_sec: rate,
        burst,
        cost: 1,
    };
    // One token per second: the burst goes through, then a denial of about
    // one second.
    for i in 0..5u64 {
        let st = admit1(&s, bucket(1, 5)).await;
        assert!(st.passed, "call {i}");
        assert_eq!((st.limit, st.remaining, st.window_start_ms), (5, 4 - i, 0));
        assert!(st.reset_ms <= 5000);
    }
    let denied = admit1(&s, bucket(1, 5)).await;
    assert!(!denied.passed);
    assert_eq!(denied.remaining, 0);
    assert!(
        denied.retry_after_ms > 500 && denied.retry_after_ms <= 1000,
        "{denied:?}"
    );
    assert!(
        denied.reset_ms > 4500 && denied.reset_ms <= 5000,
        "{denied:?}"
    );

    // A fast bucket refills within what the denial reports.
    let fast = |key: &str| Check::Bucket {
        key: key.into(),
        rate_per_sec: 20,
        burst: 2,
        cost: 1,
    };
    assert!(admit1(&s, fast("fast")).await.passed);
    assert!(admit1(&s, fast("fast")).await.passed);
    let denied = admit1(&s, fast("fast")).await;
    assert!(!denied.passed && denied.retry_after_ms > 0 && denied.retry_after_ms <= 50);
    tokio::time::sleep(Duration::from_millis(denied.retry_after_ms + 1)).await;
    assert!(admit1(&s, fast("fast")).await.passed);
    s.cleanup().await;
}

#[tokio::test]
async fn concurrency_limit_release_and_lease_expiry() {
    let s = TestStore::new().await;
    let a = admit1(&s, lease("cc", 2, "a", DAY)).await;
    assert!(a.passed);
    assert_eq!((a.limit, a.remaining), (2, 1));
    assert!(admit1(&s, lease("cc", 2, "b", DAY)).await.passed);
    let denied = admit1(&s, lease("cc", 2, "c", DAY)).await;
    assert!(!denied.passed);
    assert_eq!(denied.remaining, 0);
    assert!(denied.retry_after_ms > DAY - 5000 && denied.retry_after_ms <= DAY);
    s.settle(&[Settle::Release {
        key: "cc".into(),
        lease_id: "a".into(),
    }])
    .await
    .unwrap();
    let c = admit1(&s, lease("cc", 2, "c", DAY)).await;
    assert!(c.passed);
    assert_eq!(c.remaining, 0);
    // Releasing an unknown lease is harmless.
    s.settle(&[Settle::Release {
        key: "cc".into(),
        lease_id: "nope".into(),
    }])
    .await
    .unwrap();
    assert!(!admit1(&s, lease("cc", 2, "d", DAY)).await.passed);

    // A lease that is never released expires after lease_ms.
    assert!(admit1(&s, lease("short", 1, "x", 200)).await.passed);
    let denied = admit1(&s, lease("short", 1, "y", 200)).await;
    assert!(!denied.passed && denied.retry_after_ms > 0 && denied.retry_after_ms <= 200);
    tokio::time::sleep(Duration::from_millis(denied.retry_after_ms + 2)).await;
    assert!(admit1(&s, lease("short", 1, "y", 200)).await.passed);
    s.cleanup().await;
}

#[tokio::test]
async fn token_budget_grants() {
    let s = TestStore::new().await;
    let st = admit1(&s, tokens("tk", 1000, 100, 300)).await;
    assert!(st.passed);
    assert_eq!((st.granted, st.remaining, st.limit), (300, 700, 1000));
    assert_eq!(st.window_start_ms % DAY, 0);
    // Less left than wanted but enough for `need`: grant what is left.
    let st = admit1(&s, tokens("tk", 1000, 100, 900)).await;
    assert!(st.passed);
    assert_eq!((st.granted, st.remaining), (700, 0));
    // Nothing left: denied, retry at the window reset.
    let st = admit1(&s, tokens("tk", 1000, 1, 10)).await;
    assert!(!st.passed);
    assert_eq!((st.granted, st.remaining), (0, 0));
    assert!(st.retry_after_ms > 0 && st.retry_after_ms == st.reset_ms);

    // Two budgets grant the same amount: the minimum over them.
    assert!(admit1(&s, tokens("small", 1000, 1, 800)).await.passed);
    let a = s
        .admit(&[
            tokens("big", 10_000, 50, 500),
            tokens("small", 1000, 50, 500),
        ])
        .await
        .unwrap();
    assert!(a.admitted);
    assert_eq!(
        a.statuses
            .iter()
            .map(|s| (s.granted, s.remaining))
            .collect::<Vec<_>>(),
        vec![(200, 9800), (200, 0)]
    );

    // `need` above what is left: denied, nothing charged anywhere.
    assert!(admit1(&s, tokens("n", 1000, 1, 950)).await.passed);
    let a = s
        .admit(&[tokens("n2", 1000, 100, 200), tokens("n", 1000, 100, 200)])
        .await
        .unwrap();
    assert!(!a.admitted);
    // "n" fails on its own; "n2" because the common grant (50) misses its
    // `need`.
    assert!(!a.statuses[0].passed && !a.statuses[1].passed);
    assert_eq!(
        a.statuses
            .iter()
            .map(|s| (s.granted, s.remaining))
            .collect::<Vec<_>>(),
        vec![(0, 1000), (0, 50)]
    );
    assert_eq!(admit1(&s, tokens("n2", 1000, 0, 0)).await.remaining, 1000);
    // Each budget covers its own `need`, but the common grant (the minimum)
    // does not cover the larger one: that budget fails.
    let a = s
        .admit(&[tokens("g1", 1000, 500, 900), tokens("g2", 100, 50, 900)])
        .await
        .unwrap();
    assert!(!a.admitted);
    assert!(!a.statuses[0].passed && a.statuses[1].passed);
    assert_eq!(a.statuses[0].retry_after_ms, a.statuses[0].reset_ms);
    // A money budget (micro-USD) grants apart from the token budgets.
    let money = Check::Tokens {
        key: "usd".into(),
        limit: 10_000,
        window_ms: DAY,
        need: 1_030,
        want: 7_000,
        money: true,
    };
    let a = s
        .admit(&[tokens("mixed", 5_000, 101, 300), money])
        .await
        .unwrap();
    assert!(a.admitted, "{a:?}");
    assert_eq!(
        a.statuses.iter().map(|s| s.granted).collect::<Vec<_>>(),
        vec![300, 7_000]
    );
    s.cleanup().await;
}

/// A calendar-month budget: the script's window (Redis's clock) is the
/// month `budget_window` gives for the same instant, settlements adjust
/// it, and it resets when the month does.
#[tokio::test]
async fn calendar_month_budgets_count_in_the_month() {
    use sluice_filters::limits::store::{budget_window, CALENDAR_MONTH};
    let s = TestStore::new().await;
    let monthly = |want: u64| Check::Tokens {
        key: "month".into(),
        limit: 1000,
        window_ms: CALENDAR_MONTH,
        need: 1,
        want,
        money: true,
    };
    let before = now_ms();
    let st = admit1(&s, monthly(300)).await;
    let after = now_ms();
    assert!(st.passed);
    assert_eq!((st.granted, st.remaining), (300, 700));
    let (start, len) = budget_window(before, CALENDAR_MONTH);
    assert!((28 * DAY..=31 * DAY).contains(&len));
    // (A month boundary between the two clock reads would move it.)
    if budget_window(after, CALENDAR_MONTH).0 == start {
        assert_eq!(st.window_start_ms, start);
        assert!(st.reset_ms <= start + len - before && st.reset_ms + 1000 >= start + len - after);
    }
    s.settle(&[Settle::Tokens {
        key: "month".into(),
        window_ms: CALENDAR_MONTH,
        window_start_ms: st.window_start_ms,
        delta: -200,
    }])
    .await
    .unwrap();
    let st = admit1(&s, monthly(0)).await;
    assert_eq!(st.remaining, 900);
    s.cleanup().await;
}

#[tokio::test]
async fn denied_call_commits_nothing() {
    let s = TestStore::new().await;
    assert!(admit1(&s, window("full", 1, DAY, false)).await.passed);
    let checks = [
        window("w", 5, DAY, false),
        window("sw", 5, DAY, true),
        Check::Bucket {
            key: "b".into(),
            rate_per_sec: 1,
            burst: 5,
            cost: 1,
        },
        lease("c", 5, "r1", DAY),
        tokens("t", 1000, 10, 100),
        window("full", 1, DAY, false),
    ];
    for _ in 0..3 {
        let a = s.admit(&checks).await.unwrap();
        assert!(!a.admitted);
        let passed: Vec<bool> = a.statuses.iter().map(|s| s.passed).collect();
        assert_eq!(passed, [true, true, true, true, true, false]);
        let remaining: Vec<u64> = a.statuses.iter().map(|s| s.remaining).collect();
        assert_eq!(remaining, [5, 5, 5, 5, 1000, 0]);
        assert!(a.statuses.iter().all(|s| s.granted == 0));
    }
    // Without the failing check everything passes from the untouched state.
    let a = s.admit(&checks[..5]).await.unwrap();
    assert!(a.admitted);
    let remaining: Vec<u64> = a.statuses.iter().map(|s| s.remaining).collect();
    assert_eq!(remaining, [4, 4, 4, 4, 900]);
    assert_eq!(a.statuses[4].granted, 100);
    s.cleanup().await;
}

#[tokio::test]
async fn settle_refunds_and_charges_current_window_only() {
    let s = TestStore::new().await;
    let st = admit1(&s, tokens("tk", 1000, 1, 300)).await;
    assert_eq!(st.granted, 300);
    let settle = |delta: i64, window_start_ms: u64| Settle::Tokens {
        key: "tk".into(),
        window_ms: DAY,
        window_start_ms,
        delta,
    };
    let left = || async { admit1(&s, tokens("tk", 1000, 0, 0)).await.remaining };
    s.settle(&[settle(-200, st.window_start_ms)]).await.unwrap();
    assert_eq!(left().await, 900);
    s.settle(&[settle(500, st.window_start_ms)]).await.unwrap();
    assert_eq!(left().await, 400);
    // Never below zero.
    s.settle(&[settle(-10_000, st.window_start_ms)])
        .await
        .unwrap();
    assert_eq!(left().await, 1000);
    // A window that is not the current one is left alone.
    s.settle(&[settle(400, st.window_start_ms - DAY)])
        .await
        .unwrap();
    assert_eq!(left().await, 1000);
    // Several settlements in one call, including a release.
    assert!(admit1(&s, lease("cc", 1, "a", DAY)).await.passed);
    s.settle(&[
        settle(250, st.window_start_ms),
        Settle::Release {
            key: "cc".into(),
            lease_id: "a".into(),
        },
    ])
    .await
    .unwrap();
    assert_eq!(left().await, 750);
    assert!(admit1(&s, lease("cc", 1, "b", DAY)).await.passed);
    s.settle(&[]).await.unwrap();
    assert!(s.admit(&[]).await.unwrap().admitted);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_under_contention_across_instances() {
    let one = TestStore::new().await;
    let two = RedisCounterStore::connect(&redis_url(), &one.prefix, TIMEOUT)
        .await
        .unwrap();
    let stores = [Arc::new(one.store.clone()), Arc::new(two)];

    // A window of 50 binds before the budget: exactly 50 admitted, and the
    // budget used is the sum of what was granted.
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let store = stores[(i % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let checks = [
                window("w", 50, DAY, false),
                tokens("t", 10_000, 1, 100 + i % 100),
            ];
            store.admit(&checks).await.unwrap()
        }));
    }
    let mut admitted = 0;
    let mut granted = 0;
    for task in tasks {
        let a: Admission = task.await.unwrap();
        if a.admitted {
            admitted += 1;
            granted += a.statuses[1].granted;
        }
    }
    assert_eq!(admitted, 50);
    let left = admit1(&stores[0], tokens("t", 10_000, 0, 0))
        .await
        .remaining;
    assert_eq!(10_000 - left, granted);

    // The budget alone: 66 full grants of 150, one of the last 100, then
    // nothing.
    let mut tasks = Vec::new();
    for i in 0..200usize {
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            store.admit(&[tokens("b", 10_000, 100, 150)]).await.unwrap()
        }));
    }
    let mut grants = Vec::new();
    for task in tasks {
        let a = task.await.unwrap();
        if a.admitted {
            grants.push(a.statuses[0].granted);
        }
    }
    grants.sort_unstable();
    assert_eq!(grants.len(), 67);
    assert_eq!(grants[0], 100);
    assert!(grants[1..].iter().all(|g| *g == 150));
    assert_eq!(
        admit1(&stores[1], tokens("b", 10_000, 0, 0))
            .await
            .remaining,
        0
    );
    one.cleanup().await;
}

#[tokio::test]
async fn unreachable_redis_fails_fast() {
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let dead = refused_port();
    let url = format!("redis://127.0.0.1:{}", dead.port);
    let store = RedisCounterStore::connect(&url, "x:", timeout)
        .await
        .unwrap();
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
    assert!(!store.ping().await);
    for _ in 0..3 {
        let started = Instant::now();
        let err = store
            .admit(&[window("w", 1, DAY, false)])
            .await
            .unwrap_err();
        assert!(started.elapsed() <= timeout, "{err}");
        // Settlements are queued at once, to land when Redis answers.
        store
            .settle(&[Settle::Release {
                key: "c".into(),
                lease_id: "a".into(),
            }])
            .await
            .unwrap();
        assert!(started.elapsed() <= timeout);
    }
    assert!(!store.flush(Duration::from_millis(100)).await);
    assert!(RedisCounterStore::connect("nonsense://", "x:", timeout)
        .await
        .is_err());
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let timeout = Duration::from_millis(300);
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let store = RedisCounterStore::connect(&url, "x:", timeout)
        .await
        .unwrap();
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
    for _ in 0..3 {
        let started = Instant::now();
        assert!(store.admit(&[window("w", 1, DAY, false)]).await.is_err());
        assert!(started.elapsed() < timeout + Duration::from_millis(250));
    }
    assert!(!store.ping().await);
    held.abort();
}

/// A private `redis-server`, killed when dropped.
pub(crate) struct Server(std::process::Child);

impl Server {
    pub(crate) fn from_child(child: std::process::Child) -> Server {
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a private `redis-server` on `port` and waits until it listens
/// (`scripts/test-deps.sh` installs it; its absence fails the test).
pub(crate) fn spawn_redis(port: u16) -> Server {
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Server)
        .expect("redis-server (run ./scripts/test-deps.sh)");
    eventually_blocking(TIMEOUT * 5, "redis-server listening", || {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("redis-server on port {port} exited ({status}): was the port taken?");
        }
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    server
}

/// Many concurrent admissions from one store share script calls (fewer
/// calls than admissions) and stay exact; settlements queued before an
/// admission are applied before it.
#[tokio::test]
async fn concurrent_admissions_are_batched_and_exact() {
    let s = Arc::new(TestStore::new().await);
    let counts = sluice::store::counter_batch::counts();
    let calls_before = counts.calls.load(Ordering::Relaxed);
    let admissions_before = counts.admissions.load(Ordering::Relaxed);
    let tasks: Vec<_> = (0..400)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.admit(&[window("b", 250, DAY, false)]).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    let mut remaining = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        if a.admitted {
            admitted += 1;
            remaining.push(a.statuses[0].remaining);
        }
        assert_eq!(a.statuses[0].limit, 250);
    }
    assert_eq!(admitted, 250);
    // Each admitted request saw its own place in the window.
    remaining.sort_unstable();
    assert_eq!(remaining, (0..250).collect::<Vec<u64>>());
    // Other tests share the process-wide figures: at least our 400 went
    // out, in fewer calls.
    let calls = counts.calls.load(Ordering::Relaxed) - calls_before;
    let admissions = counts.admissions.load(Ordering::Relaxed) - admissions_before;
    assert!(admissions >= 400);
    assert!(
        calls < admissions,
        "{calls} calls for {admissions} admissions"
    );

    // A refund queued, then an admission: the admission sees the refund.
    let st = admit1(&s, tokens("order", 1000, 1, 600)).await;
    s.settle(&[Settle::Tokens {
        key: "order".into(),
        window_ms: DAY,
        window_start_ms: st.window_start_ms,
        delta: -600,
    }])
    .await
    .unwrap();
    assert_eq!(
        admit1(&s, tokens("order", 1000, 0, 0)).await.remaining,
        1000
    );
    s.cleanup().await;
}

/// Redis stops answering while settlements are on their way: the call
/// times out, yet Redis runs it once it resumes. The retry must not apply
/// them again (a refund counted twice would give tokens away).
#[tokio::test]
async fn settlements_outlast_a_stall_and_land_once() {
    let reserved = refused_port();
    let port = reserved.port;
    let _server = spawn_redis(reserved.release());
    let url = format!("redis://127.0.0.1:{port}");
    let timeout = Duration::from_millis(300);
    let store = RedisCounterStore::connect(&url, "stall:", timeout)
        .await
        .unwrap();
    wait_until_up(&store).await;
    let st = admit1(&store, tokens("tk", 1000, 1, 300)).await;
    assert_eq!(st.remaining, 700);
    // Every client paused for longer than the store's timeout.
    let admin = Client::new(Config::from_url(&url).unwrap(), None, None, None);
    admin.init().await.unwrap();
    let _: () = admin
        .custom(
            fred::types::CustomCommand::new_static("CLIENT", None, false),
            vec!["PAUSE", "1500", "ALL"],
        )
        .await
        .unwrap();
    store
        .settle(&[
            Settle::Tokens {
                key: "tk".into(),
                window_ms: DAY,
                window_start_ms: st.window_start_ms,
                delta: -100,
            },
            // Coalesced with the first: one item of -200.
            Settle::Tokens {
                key: "tk".into(),
                window_ms: DAY,
                window_start_ms: st.window_start_ms,
                delta: -100,
            },
        ])
        .await
        .unwrap();
    assert!(!store.flush(timeout * 2).await, "landed during the pause");
    // After the pause: landed, exactly once.
    assert!(store.flush(Duration::from_secs(10)).await);
    eventually("the store answers again", async || {
        store.admit(&[tokens("tk", 1000, 0, 0)]).await.is_ok()
    })
    .await;
    assert_eq!(
        admit1(&store, tokens("tk", 1000, 0, 0)).await.remaining,
        900
    );
}

/// Polls `ping` until it answers (the reconnect policy backs off to 2 s).
async fn wait_until_up(store: &RedisCounterStore) {
    eventually("the store reconnected", async || store.ping().await).await;
}

#[tokio::test]
async fn reconnects_and_reloads_the_script() {
    let reserved = refused_port();
    let port = reserved.port;
    let timeout = Duration::from_millis(300);
    let url = format!("redis://127.0.0.1:{port}");
    // Redis is down when the store starts.
    let store = RedisCounterStore::connect(&url, "r:", timeout)
        .await
        .unwrap();
    assert!(store.admit(&[window("w", 10, DAY, false)]).await.is_err());
    let server = spawn_redis(reserved.release());
    wait_until_up(&store).await;
    let st = admit1(&store, window("w", 10, DAY, false)).await;
    assert_eq!(st.remaining, 9);
    // A flushed script cache (restart, failover) is reloaded on the fly.
    let admin = Client::new(Config::from_url(&url).unwrap(), None, None, None);
    admin.init().await.unwrap();
    let _: () = admin.script_flush(false).await.unwrap();
    assert_eq!(
        admit1(&store, window("w", 10, DAY, false)).await.remaining,
        8
    );
    // Redis goes away: errors, promptly; it comes back: answers again.
    drop(server);
    let started = Instant::now();
    assert!(store.admit(&[window("w", 10, DAY, false)]).await.is_err());
    assert!(started.elapsed() <= timeout + Duration::from_millis(250));
    let _server = spawn_redis(port);
    wait_until_up(&store).await;
    assert_eq!(
        admit1(&store, window("w", 10, DAY, false)).await.remaining,
        9
    );
}

/// Mean latency of sequential admits against the test Redis:
/// `cargo test --test it redis_counter:: -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn latency_sequential_admits() {
    let s = TestStore::new().await;
    for (name, checks) in [
        ("1 fixed window", vec![window("w", u64::MAX, DAY, false)]),
        (
            "window + sliding + bucket + lease + tokens",
            vec![
                window("w", u64::MAX, DAY, false),
                window("sw", 1_000_000, 60_000, true),
                Check::Bucket {
                    key: "b".into(),
                    rate_per_sec: 1_000_000,
                    burst: 1_000_000,
                    cost: 1,
                },
                lease("c", 1_000_000, "l", 1000),
                tokens("t", u64::MAX, 1, 10),
            ],
        ),
    ] {
        let n = 10_000u32;
        let started = Instant::now();
        for _ in 0..n {
            assert!(s.admit(&checks).await.unwrap().admitted);
        }
        let mean = started.elapsed() / n;
        println!("{name}: {n} sequential admits, mean {mean:?}");
    }
    s.cleanup().await;
}

/// A small deterministic generator for the conformance sequence.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// The same calls against Redis and `LocalCounterStore` give the same
/// answers: every field equal except the timing ones (within a second,
/// the two stores answer at slightly different instants).
#[tokio::test]
async fn conformance_with_local_store() {
    use sluice_filters::limits::local::LocalCounterStore;
    use sluice_filters::limits::store::SystemClock;

    let redis = TestStore::new().await;
    let local = LocalCounterStore::new(Arc::new(SystemClock));
    let mut rng = Lcg(0x5eed);
    let mut leases: Vec<String> = Vec::new();
    let mut budgets: Vec<(String, u64)> = Vec::new();
    let mut windows: Vec<(String, u64)> = Vec::new();
    let started = Instant::now();
    let mut admitted = 0;
    for call in 0..300u64 {
        if call % 7 == 3 && !leases.is_empty() {
            let lease_id = leases.swap_remove(rng.next(leases.len() as u64) as usize);
            let mut ops = vec![Settle::Release {
                key: "ca".into(),
                lease_id,
            }];
            if let Some((key, start)) = budgets.get(rng.next(budgets.len().max(1) as u64) as usize)
            {
                ops.push(Settle::Tokens {
                    key: key.clone(),
                    window_ms: DAY,
                    window_start_ms: *start,
                    delta: rng.next(601) as i64 - 300,
                });
            }
            // What a stand-in admitted, handed over (`local_share`).
            if let Some((key, start)) = windows.get(rng.next(windows.len().max(1) as u64) as usize)
            {
                ops.push(Settle::Requests {
                    key: key.clone(),
                    window_ms: DAY,
                    window_start_ms: *start,
                    delta: rng.next(4) as i64,
                });
            }
            if rng.next(2) == 0 {
                ops.push(Settle::Logged {
                    key: "sa".into(),
                    window_ms: DAY,
                    count: rng.next(3),
                });
            }
            redis.settle(&ops).await.unwrap();
            local.settle(&ops).await.unwrap();
        }
        let mut checks = Vec::new();
        for _ in 0..=rng.next(3) {
            let need = 1 + rng.next(300);
            checks.push(match rng.next(9) {
                0 => window("fa", 40, DAY, false),
                1 => window("fb", 100, DAY, false),
                2 => Check::Window {
                    key: "sa".into(),
                    limit: 30,
                    window_ms: DAY,
                    sliding: true,
                    cost: 1 + rng.next(2),
                },
                3 => Check::Bucket {
                    key: "ba".into(),
                    rate_per_sec: 0,
                    burst: 30,
                    cost: 1,
                },
                4 => Check::Bucket {
                    key: "bb".into(),
                    rate_per_sec: 1,
                    burst: 20,
                    cost: 1 + rng.next(2),
                },
                5 | 6 => lease("ca", 5, &format!("lease-{call}-{}", rng.next(2)), DAY),
                7 => tokens("ta", 20_000, need, need + rng.next(700)),
                _ => tokens("tb", 8000, need, need + rng.next(700)),
            });
        }
        let r = redis.admit(&checks).await.unwrap();
        let l = local.admit(&checks).await.unwrap();
        assert_eq!(
            r.admitted, l.admitted,
            "call {call}: {checks:?}\nredis {r:?}\nlocal {l:?}"
        );
        assert_eq!(r.statuses.len(), l.statuses.len());
        for (i, (a, b)) in r.statuses.iter().zip(&l.statuses).enumerate() {
            let exact =
                |s: &CheckStatus| (s.passed, s.limit, s.remaining, s.granted, s.window_start_ms);
            assert_eq!(
                exact(a),
                exact(b),
                "call {call} check {i}: {checks:?}\nredis {r:?}\nlocal {l:?}"
            );
            assert!(
                a.retry_after_ms.abs_diff(b.retry_after_ms) <= 1000,
                "call {call} check {i}: redis {a:?} local {b:?}"
            );
            assert!(
                a.reset_ms.abs_diff(b.reset_ms) <= 1000,
                "call {call} check {i}: redis {a:?} local {b:?}"
            );
        }
        if r.admitted {
            admitted += 1;
            for (check, status) in checks.iter().zip(&r.statuses) {
                match check {
                    Check::Concurrency { lease_id, .. } => leases.push(lease_id.clone()),
                    Check::Tokens { key, .. } => {
                        budgets.push((key.clone(), status.window_start_ms))
                    }
                    Check::Window {
                        key,
                        sliding: false,
                        ..
                    } => windows.push((key.clone(), status.window_start_ms)),
                    _ => {}
                }
            }
        }
    }
    // The bucket refilling at 1 token/s stays comparable while the whole
    // sequence takes well under a second.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // The sequence exercises admissions and denials alike.
    assert!((60..=240).contains(&admitted), "{admitted} of 300 admitted");
    redis.cleanup().await;
}
