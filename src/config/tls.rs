//! Inbound TLS of a listener (`listen.proxy_tls`, `listen.admin_tls`):
//! certificate chains and keys as PEM files, chosen by SNI; HTTP/2 by
//! ALPN; optionally client certificates (mTLS) checked against a CA
//! bundle. Loaded and served by `src/tls.rs`; the files are read again
//! when they change (and on SIGHUP) without a restart.

use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// TLS on one listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListener {
    /// Certificate chains with their keys; the first also answers clients
    /// that send no SNI or a name no certificate has.
    pub certificates: Vec<CertificateFiles>,
    /// Offer HTTP/2 (ALPN `h2`) besides HTTP/1.1 (default true).
    #[serde(default = "yes")]
    pub http2: bool,
    /// A PEM bundle of the CAs client certificates must chain to; set =
    /// every client must present one (mTLS). Read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
}

/// One certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// PEM file: the leaf certificate first, then its intermediates.
    pub cert: String,
    /// PEM file: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// The names (SNI) it answers, `*.example.com` for a wildcard; empty =
    /// the DNS names in the certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_names: Vec<String>,
}
