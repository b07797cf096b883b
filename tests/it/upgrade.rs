//! Zero-downtime binary upgrade and reload with the real binary: a new
//! process started with `--upgrade` takes the listening sockets over when
//! the old one gets SIGQUIT; the old one finishes its streams and exits.
//! Steady load (requests on fresh connections, and long streams started
//! before the hand-over) sees no failed request and no cut stream, through
//! the upgrade and a SIGHUP reload of the new process. SIGUSR2 does the
//! same from the running process (under systemd: the new one reports its
//! pid as the main one).

use crate::common::*;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Kills the new process when the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_and_reload_under_load_lose_nothing() {
    let m = mock("a").await;
    let sock = std::env::temp_dir().join(format!(
        "sluice-upgrade-{}-{}.sock",
        std::process::id(),
        m.addr.port()
    ));
    let _ = std::fs::remove_file(&sock);
    let yaml = one_mock(m.addr.port(), "").replace(
        "graceful_shutdown_timeout_seconds: 1\n",
        &format!(
            "graceful_shutdown_timeout_seconds: 60\n  upgrade_sock: \"{}\"\n",
            sock.display()
        ),
    );
    assert!(yaml.contains("upgrade_sock"));
    let mut old = Gateway::start(&yaml).await;
    let url = old.url("/v1/chat/completions");

    // Steady load: one request after another, each on a fresh connection.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), url.clone());
        tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut errors = Vec::new();
            while !stop.load(Relaxed) {
                let outcome = match post(&c, url.clone()).json(&chat_body(false)).send().await {
                    Ok(r) => {
                        let status = r.status();
                        match r.text().await {
                            Ok(_) if status == 200 => Ok(()),
                            Ok(body) => Err(format!("{status}: {body}")),
                            Err(e) => Err(format!("{status}: {e}")),
                        }
                    }
                    Err(e) => Err(format!("{e:?}")),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Relaxed);
                        errors.push(e);
                    }
                }
            }
            errors
        })
    };
    // Long streams, started before the hand-over (40 chunks, 100 ms apart).
    let c = reqwest::Client::new();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let r = old.slow_stream(&c, 40, 100).await;
        assert_eq!(r.status(), 200);
        streams.push(tokio::spawn(async move { r.text().await }));
    }

    // The new process waits on the upgrade socket for the listeners.
    let log = std::env::temp_dir().join(format!("sluice-upgrade-{}.log", std::process::id()));
    let new = Command::new(sluice_bin())
        .args(["run", "--upgrade", "-c"])
        .arg(&old.config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut new = Guard(new);
    let sock_seen = sock.clone();
    eventually_within(
        Duration::from_secs(30),
        "the new process listens for the sockets",
        async || sock_seen.exists(),
    )
    .await;
    let before = ok.load(Relaxed);
    old.signal("QUIT");
    // The old process hands over, then drains: its streams end whole.
    for s in streams {
        let text = s.await.unwrap().unwrap();
        assert!(
            text.trim_end().ends_with("data: [DONE]"),
            "a stream was cut: {text}"
        );
    }
    let status = old.exited(Duration::from_secs(60)).await;
    assert!(status.is_some(), "the old process did not exit");
    assert!(
        new.0.try_wait().unwrap().is_none(),
        "the new process is not running"
    );
    // The new one serves the port.
    let served_before = ok.load(Relaxed);
    eventually("requests keep succeeding after the hand-over", async || {
        ok.load(Relaxed) > served_before + 20
    })
    .await;

    // A reload of the new process under the same load.
    let reloaded =
        std::fs::read_to_string(&old.config_path).unwrap() + "\ntimeouts: {connect_ms: 4000}\n";
    std::fs::write(&old.config_path, reloaded).unwrap();
    let ok_kill = Command::new("kill")
        .args(["-HUP", &new.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok_kill);
    let after_hup = ok.load(Relaxed);
    eventually("requests keep succeeding after the reload", async || {
        ok.load(Relaxed) > after_hup + 20
    })
    .await;
    assert!(
        new.0.try_wait().unwrap().is_none(),
        "SIGHUP stopped the new process"
    );

    stop.store(true, Relaxed);
    let errors = load.await.unwrap();
    assert!(ok.load(Relaxed) > before, "no request was served");
    assert_eq!(failed.load(Relaxed), 0, "failed requests: {errors:?}");
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(&log);
}

/// The messages systemd would get on `NOTIFY_SOCKET`.
fn notifications(path: &std::path::Path) -> std::sync::mpsc::Receiver<String> {
    let socket = std::os::unix::net::UnixDatagram::bind(path).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).to_string())
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr2_starts_the_new_binary_which_reports_itself_to_systemd() {
    let m = mock("a").await;
    let tag = format!("{}-{}", std::process::id(), m.addr.port());
    let sock = std::env::temp_dir().join(format!("sluice-usr2-{tag}.sock"));
    let notify = std::env::temp_dir().join(format!("sluice-notify-{tag}.sock"));
    let _ = std::fs::remove_file(&notify);
    let messages = notifications(&notify);
    let yaml = one_mock(m.addr.port(), "").replace(
        "graceful_shutdown_timeout_seconds: 1\n",
        &format!(
            "graceful_shutdown_timeout_seconds: 60\n  upgrade_sock: \"{}\"\n",
            sock.display()
        ),
    );
    let notify_path = notify.display().to_string();
    let mut old = Gateway::start_with(
        &yaml,
        Launch {
            env: &[("NOTIFY_SOCKET", &notify_path)],
            ..Launch::default()
        },
    )
    .await;
    let next = |what: &str| {
        messages
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no {what} notification"))
    };
    assert_eq!(next("ready"), "READY=1");
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let stream = old.slow_stream(&c, 30, 100).await;
    assert_eq!(stream.status(), 200);
    let stream = tokio::spawn(async move { stream.text().await });

    old.signal("USR2");
    // The successor's is the one naming a main process; a plain
    // `READY=1` before it is the first start's again (the test harness
    // starts a gateway again when another process took one of its ports,
    // and each start says it is ready).
    let handed = tokio::task::spawn_blocking(move || loop {
        let m = messages
            .recv_timeout(Duration::from_secs(60))
            .expect("the successor's notification");
        if m != "READY=1" {
            break m;
        }
    })
    .await
    .unwrap();
    let pid: u32 = handed
        .lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no MAINPID in {handed:?}"));
    assert!(handed.contains("READY=1"), "{handed}");
    assert_ne!(pid, 0);
    // Killed at the end whatever happens.
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
    let _successor = Kill(pid);
    let text = stream.await.unwrap().unwrap();
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "the stream was cut: {text}"
    );
    assert!(
        old.exited(Duration::from_secs(60)).await.is_some(),
        "the old process did not exit"
    );
    // The successor serves the port.
    for _ in 0..20 {
        let r = post(&c, old.url("/v1/chat/completions"))
            .json(&chat_body(false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let _ = std::fs::remove_file(&notify);
    let _ = std::fs::remove_file(&sock);
}

/// systemd hears `READY=1` only once every listener is bound: while
/// another process holds the proxy's port (the gateway tries it again
/// every second), nothing; once it is free, `READY=1`, and the port
/// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_only_once_every_listener_is_bound() {
    let m = mock("a").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let tag = format!("{}-{}", std::process::id(), m.addr.port());
    let notify = std::env::temp_dir().join(format!("sluice-ready-{tag}.sock"));
    let config = std::env::temp_dir().join(format!("sluice-ready-{tag}.yaml"));
    let _ = std::fs::remove_file(&notify);
    // Read here, not by a thread: a message sent is in the socket's queue
    // when `send` returns, so "nothing yet" below is exact.
    let socket = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    socket.set_nonblocking(true).unwrap();
    let free = || listener_port().local_addr().unwrap();
    let yaml = one_mock(m.addr.port(), "")
        .replace("{proxy}", &format!("127.0.0.1:{port}"))
        .replace("{admin}", &free().to_string())
        .replace("{metrics}", &free().to_string());
    std::fs::write(&config, yaml).unwrap();
    let mut child = Command::new(sluice_bin())
        .args(["run", "-c"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .env("NOTIFY_SOCKET", &notify)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = Guard(child);
    // Its log, line by line; the first "in use" means it tried the port.
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let in_use = format!("127.0.0.1:{port} is in use");
    let lines = tokio::task::spawn_blocking(move || loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway saying the port is in use");
        if line.contains(&in_use) {
            return lines;
        }
    })
    .await
    .unwrap();
    let mut buf = [0u8; 512];
    let early = socket.recv(&mut buf);
    assert!(
        early.is_err(),
        "systemd was told {:?} before the proxy's port was bound",
        String::from_utf8_lossy(&buf[..early.unwrap_or(0)])
    );
    drop(taken);
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        let n = socket
            .recv(&mut buf)
            .expect("READY=1 once the port is free");
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap();
    assert_eq!(ready, "READY=1");
    // Bound by then: no retry needed.
    let r = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(lines);
    let _ = std::fs::remove_file(&notify);
    let _ = std::fs::remove_file(&config);
}
