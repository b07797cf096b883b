//! Inbound TLS with the real binary: certificates chosen by SNI (exact,
//! wildcard, the first for unknown names), HTTP/2 by ALPN with chat,
//! streams and limits behaving as on HTTP/1.1, client certificates on the
//! admin listener, and certificates replaced on disk picked up without a
//! restart (connections already open keep working).

use crate::common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Ca {
    pub(crate) cert: rcgen::Certificate,
    key: KeyPair,
}

pub(crate) fn new_ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// A leaf for `names` signed by `ca`: (cert PEM, key PEM, cert DER).
pub(crate) fn leaf(ca: &Ca, names: &[&str]) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca.cert, &ca.key)
        .unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sluice-tls-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    // Written whole, then renamed: a reader never sees half a file.
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p.display().to_string()
}

/// The certificate the listener on `port` presents for `sni`.
async fn served_cert(port: u16, sni: &str, ca_pem: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
        .await
        .unwrap_or_else(|e| panic!("handshake for {sni}: {e}"));
    let certs: &[CertificateDer<'_>] = tls.get_ref().1.peer_certificates().unwrap();
    certs[0].to_vec()
}

fn client(ca_pem: &str, port: u16, admin_port: u16) -> reqwest::ClientBuilder {
    let addr = |p| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .resolve("a.test", addr(port))
        .resolve("admin.test", addr(admin_port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_choose_by_sni_speak_h2_check_clients_and_reload() {
    let m = mock("a").await;
    let d = dir();
    let ca = new_ca();
    let ca_pem = ca.cert.pem();
    let ca_path = write(&d, "ca.pem", &ca_pem);
    let (a_cert, a_key, a_der) = leaf(&ca, &["a.test", "*.wild.test"]);
    let (b_cert, b_key, b_der) = leaf(&ca, &["b.test"]);
    let (c_cert, c_key, _) = leaf(&ca, &["client"]);
    let (adm_cert, adm_key, _) = leaf(&ca, &["admin.test"]);
    let adm = (
        write(&d, "adm.pem", &adm_cert),
        write(&d, "adm.key", &adm_key),
    );
    let a = (write(&d, "a.pem", &a_cert), write(&d, "a.key", &a_key));
    let b = (write(&d, "b.pem", &b_cert), write(&d, "b.key", &b_key));
    let tls = format!(
        "  proxy_tls:\n    certificates:\n      - {{cert: \"{}\", key: \"{}\"}}\n      - {{cert: \"{}\", key: \"{}\"}}\n  admin_tls:\n    certificates: [{{cert: \"{}\", key: \"{}\", server_names: [admin.test]}}]\n    client_ca: \"{ca_path}\"\n",
        a.0, a.1, b.0, b.1, adm.0, adm.1
    );
    let rules = "rules:\n  - rule_name: three\n    rule_type: rate_limit\n    rule_config: {max_requests: 3, time_window_seconds: 60}\n";
    let yaml = admin_config(m.addr.port(), "tls-tok", rules).replacen(
        "  admin: \"{admin}\"\n",
        &format!("  admin: \"{{admin}}\"\n{tls}"),
        1,
    );
    let gw = Gateway::start(&yaml).await;
    let (port, admin_port) = (gw.port, gw.admin_port);

    // SNI: exact names, a wildcard, the first certificate otherwise.
    assert_eq!(served_cert(port, "a.test", &ca_pem).await, a_der);
    assert_eq!(served_cert(port, "b.test", &ca_pem).await, b_der);
    assert_eq!(served_cert(port, "x.wild.test", &ca_pem).await, a_der);

    // HTTP/2 by ALPN: chat, a stream, the limits.
    let c = client(&ca_pem, port, admin_port).build().unwrap();
    let url = format!("https://a.test:{port}/v1/chat/completions");
    let r = c
        .post(&url)
        .bearer_auth("sk-test")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("chat.completion"));
    let r = c
        .post(&url)
        .bearer_auth("sk-test")
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let (status, kind) = (r.status(), r.headers()["content-type"].clone());
    if kind != "text/event-stream" {
        panic!("{status} {}", r.text().await.unwrap());
    }
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let r = c
        .post(&url)
        .bearer_auth("sk-test")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(&url)
        .bearer_auth("sk-test")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the fourth request of the minute");
    assert!(r.headers().contains_key("retry-after"));
    // HTTP/1.1 clients are served too.
    let h1 = client(&ca_pem, port, admin_port)
        .http1_only()
        .build()
        .unwrap();
    let r = h1
        .get(format!("https://a.test:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_11, 200)
    );

    // The admin listener wants a client certificate signed by the CA.
    let admin = format!("https://admin.test:{admin_port}/health");
    assert!(c.get(&admin).send().await.is_err());
    let identity = reqwest::Identity::from_pem(format!("{c_cert}{c_key}").as_bytes()).unwrap();
    let with_cert = client(&ca_pem, port, admin_port)
        .identity(identity)
        .build()
        .unwrap();
    let r = with_cert.get(&admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let stranger = new_ca();
    let (s_cert, s_key, _) = leaf(&stranger, &["client"]);
    let identity = reqwest::Identity::from_pem(format!("{s_cert}{s_key}").as_bytes()).unwrap();
    let foreign = client(&ca_pem, port, admin_port)
        .identity(identity)
        .build()
        .unwrap();
    assert!(foreign.get(&admin).send().await.is_err());

    // A new certificate on disk is served without a restart; the open
    // HTTP/2 connection keeps working.
    let (a2_cert, a2_key, a2_der) = leaf(&ca, &["a.test", "*.wild.test"]);
    write(&d, "a.key", &a2_key);
    write(&d, "a.pem", &a2_cert);
    eventually_within(
        Duration::from_secs(15),
        "the new certificate is served",
        async || served_cert(port, "a.test", &ca_pem).await == a2_der,
    )
    .await;
    let r = c
        .get(format!("https://a.test:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A broken file is refused; the current certificate stays.
    write(&d, "b.pem", "not a certificate");
    gw.signal("HUP");
    assert_eq!(served_cert(port, "b.test", &ca_pem).await, b_der);
    let _ = std::fs::remove_dir_all(&d);
}

/// A plaintext HTTP/2 (prior knowledge) upstream answering every request
/// with a chat completion that names the HTTP version it got.
async fn h2c_upstream() -> u16 {
    use http_body_util::{BodyExt, Full};
    use hyper::server::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let version = format!("{:?}", req.version());
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let asked: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        let answer = serde_json::json!({"id": "h2c", "object": "chat.completion", "model": asked["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": version}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(bytes::Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    },
                );
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upstreams_are_spoken_to_in_plaintext_http2() {
    let port = h2c_upstream().await;
    let yaml = config(
        &[server("v", "vllm", port, "    server_type: h2c\n")],
        "routes: [{prefix: /, upstream: vllm}]\nmodels:\n  - name: local\n    deployments: [{name: one, upstream: vllm, provider: openai}]\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = reqwest::Client::new();
    for body in [
        serde_json::json!({"model": "local", "messages": [{"role": "user", "content": "hi"}]}),
        chat_body(false),
    ] {
        let r = post(&c, gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "HTTP/2.0", "{v}");
    }
}
