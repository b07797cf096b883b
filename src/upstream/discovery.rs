//! Service discovery for a pool: turns configured servers (host name or IP)
//! into `Backend`s with socket addresses. Runs in the background service
//! (and once at startup), never on the request path: Pingora's
//! `HttpPeer::new` would resolve a name with blocking DNS on the request
//! path and panic when it fails (PINGORA.md), so peers are built only from
//! the addresses resolved here.

use super::ServerRt;
use async_trait::async_trait;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// Discovers the backends of one pool.
pub struct PoolDiscovery {
    servers: Vec<Arc<ServerRt>>,
}

impl PoolDiscovery {
    pub fn new(servers: Vec<Arc<ServerRt>>) -> Self {
        PoolDiscovery { servers }
    }
}

async fn resolve(server: &ServerRt) -> std::io::Result<std::net::SocketAddr> {
    if let Ok(ip) = server.address.parse::<IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, server.port));
    }
    let mut addrs = tokio::net::lookup_host((server.address.as_str(), server.port)).await?;
    addrs.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "name resolved to no address")
    })
}

#[async_trait]
impl ServiceDiscovery for PoolDiscovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let mut backends = BTreeSet::new();
        let mut failures = 0;
        for server in &self.servers {
            match resolve(server).await {
                Ok(addr) => {
                    let mut backend = Backend {
                        addr: SocketAddr::Inet(addr),
                        weight: server.weight,
                        ext: Default::default(),
                    };
                    backend.ext.insert(server.clone());
                    backends.insert(backend);
                }
                Err(e) => {
                    failures += 1;
                    log::warn!(
                        "upstream server {} ({}:{}): cannot resolve: {e}",
                        server.name,
                        server.address,
                        server.port
                    );
                }
            }
        }
        if failures > 0 && backends.is_empty() {
            // Keep the last good set rather than emptying the pool.
            return pingora::Error::e_explain(
                pingora::ErrorType::InternalError,
                "no upstream server of the pool could be resolved",
            );
        }
        Ok((backends, HashMap::new()))
    }
}
