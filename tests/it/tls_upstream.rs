//! HTTPS upstreams: the gateway sends SNI and the upstream's Host, and
//! verifies the certificate (an untrusted one fails with 502).

use crate::common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA (PEM) and a TLS server for `localhost` signed by it that answers
/// every request with the SNI and Host it saw.
async fn tls_upstream() -> (u16, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_string);
                let mut buf = vec![0u8; 16384];
                let mut got = Vec::new();
                while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&got).to_string();
                let host = head_value(&head, "host");
                let body = json!({"sni": sni, "host": host}).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_get_sni_host_and_verification() {
    let (port, ca_pem) = tls_upstream().await;
    let ca_path =
        std::env::temp_dir().join(format!("sluice-test-ca-{}-{port}.pem", std::process::id()));
    std::fs::write(&ca_path, ca_pem).unwrap();
    let tls = "    server_type: https\n    sni: localhost\n";
    let routes = CATCH_ALL;

    let trusted = format!("upstream:\n  ca_file: {}\n{routes}", ca_path.display());
    let gw = Gateway::start(&config(&[server("s", "p", port, tls)], &trusted)).await;
    let client = reqwest::Client::new();
    let r = gw.get(&client, "/v1/models").await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["sni"], "localhost");
    assert_eq!(seen["host"], format!("localhost:{port}"));

    // Without the CA the certificate is not trusted: verification is on.
    let gw = Gateway::start(&config(&[server("s", "p", port, tls)], routes)).await;
    let r = gw.get(&client, "/v1/models").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_connect_error");
    let _ = std::fs::remove_file(&ca_path);
}
