//! Inbound TLS (`listen.proxy_tls`, `listen.admin_tls`) on Pingora's
//! rustls listener: the certificate of a handshake is chosen by SNI
//! ([`SniCerts`]: exact name, then a wildcard, then the listener's first
//! certificate), HTTP/2 is offered by ALPN, and the admin listener may
//! ask for client certificates (mTLS). TLS 1.2 and 1.3 only (Pingora's
//! rustls acceptor).
//!
//! Certificates are read again, without a restart, when one of their files
//! changes ([`reload_all`], every few seconds from a background service,
//! and on SIGHUP); a handshake takes the set current at its start, so
//! connections already open keep theirs. A set that fails to load is
//! reported and the old one kept.

use crate::config::{CertificateFiles, TlsListener};
use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One listener's certificates, by name.
#[derive(Debug)]
struct CertSet {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored as `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

/// The DNS names of a certificate: its subject alternative names, else
/// its common name.
fn names_of(cert: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in parsed.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    Ok(names)
}

/// Loads one certificate chain and its key, checked to be a pair.
fn load_pair(files: &CertificateFiles) -> Result<(Arc<CertifiedKey>, Vec<String>), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("{}: {e}", files.cert))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", files.cert))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{}: no certificate in the file", files.cert));
    };
    let names = if files.server_names.is_empty() {
        names_of(leaf).map_err(|e| format!("{}: {e}", files.cert))?
    } else {
        files
            .server_names
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect()
    };
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| format!("{}: {e}", files.key))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("{}: unsupported key: {e}", files.key))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| format!("{} and {}: not a pair ({e})", files.cert, files.key))?;
    Ok((Arc::new(certified), names))
}

impl CertSet {
    fn load(listener: &TlsListener) -> Result<CertSet, String> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut default = None;
        for files in &listener.certificates {
            let (key, names) = load_pair(files)?;
            for name in names {
                match name.strip_prefix("*.") {
                    Some(domain) => wildcard.entry(domain.to_string()),
                    None => exact.entry(name),
                }
                .or_insert_with(|| key.clone());
            }
            default.get_or_insert(key);
        }
        let default = default.ok_or("no certificate")?;
        Ok(CertSet {
            exact,
            wildcard,
            default,
        })
    }

    fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        if let Some((_, domain)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(domain) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

/// The certificate resolver of one listener, reloadable.
#[derive(Debug)]
pub struct SniCerts {
    what: String,
    listener: TlsListener,
    set: ArcSwap<CertSet>,
    /// The files' modification times when the set was loaded.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.set.load().pick(hello.server_name()))
    }
}

fn stamps(listener: &TlsListener) -> Vec<Option<SystemTime>> {
    listener
        .certificates
        .iter()
        .flat_map(|c| [&c.cert, &c.key])
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl SniCerts {
    fn load(what: &str, listener: &TlsListener) -> Result<SniCerts, String> {
        let stamped = stamps(listener);
        let set = CertSet::load(listener).map_err(|e| format!("{what}: {e}"))?;
        Ok(SniCerts {
            what: what.to_string(),
            listener: listener.clone(),
            set: ArcSwap::from_pointee(set),
            stamps: Mutex::new(stamped),
        })
    }

    /// Reads the files again when one changed (or always, with `force`).
    /// Returns whether a new set is in use.
    pub fn reload(&self, force: bool) -> bool {
        let now = stamps(&self.listener);
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if !force && *seen == now {
            return false;
        }
        *seen = now;
        match CertSet::load(&self.listener) {
            Ok(set) => {
                self.set.store(Arc::new(set));
                log::warn!("{}: certificates reloaded", self.what);
                true
            }
            Err(e) => {
                log::error!(
                    "{}: certificates not reloaded, the previous ones stay: {e}",
                    self.what
                );
                false
            }
        }
    }
}

/// Every listener's resolver, for [`reload_all`].
static RESOLVERS: Mutex<Vec<Arc<SniCerts>>> = Mutex::new(Vec::new());

/// Reloads the certificates whose files changed (`force`: all of them).
pub fn reload_all(force: bool) {
    let all = RESOLVERS.lock().map(|r| r.clone()).unwrap_or_default();
    for r in all {
        r.reload(force);
    }
}

/// Whether any listener terminates TLS.
pub fn any() -> bool {
    RESOLVERS.lock().is_ok_and(|r| !r.is_empty())
}

/// Pingora's TLS settings for a listener: the SNI resolver, ALPN (h2 and
/// http/1.1, or http/1.1 only), client certificates when `client_ca` is
/// set. `what` names the listener in errors and logs.
pub fn settings(what: &str, listener: &TlsListener) -> Result<TlsSettings, String> {
    // rustls needs its process-wide crypto provider before a verifier is
    // built (Pingora installs the same one when it builds the acceptor).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = Arc::new(SniCerts::load(what, listener)?);
    let mut settings = TlsSettings::intermediate("", "").map_err(|e| format!("{what}: {e}"))?;
    settings.set_cert_resolver(certs.clone());
    if listener.http2 {
        settings.enable_h2();
    }
    if let Some(ca) = &listener.client_ca {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{what}: {ca}: {e}"))? {
            let cert = cert.map_err(|e| format!("{what}: {ca}: {e}"))?;
            roots.add(cert).map_err(|e| format!("{what}: {ca}: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("{what}: {ca}: no CA certificate in the file"));
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| format!("{what}: {ca}: {e}"))?;
        settings.set_client_cert_verifier(verifier);
    }
    if let Ok(mut all) = RESOLVERS.lock() {
        all.push(certs);
    }
    Ok(settings)
}
