//! Active health checks: `GET health_check_url` on each server that has one,
//! with the server's own `Host`, TLS and SNI; a 2xx answer passes. Servers
//! without a `health_check_url` always pass (only passive ejection applies).
//! Pingora's `HttpHealthCheck` sends one path and one Host for the whole
//! pool, hence this implementation of its `HealthCheck` trait.

use super::server_of;
use crate::config::UpstreamSettings;
use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::http::RequestHeader;
use pingora::lb::health_check::HealthCheck;
use pingora::lb::Backend;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use std::time::Duration;

pub struct ServerHealthCheck {
    connector: Connector,
    timeout: Duration,
    healthy_threshold: usize,
    unhealthy_threshold: usize,
}

impl ServerHealthCheck {
    pub fn new(settings: &UpstreamSettings) -> Self {
        ServerHealthCheck {
            connector: Connector::new(settings.ca_file.as_ref().map(|ca| {
                let mut options = ConnectorOptions::new(1);
                options.ca_file = Some(ca.clone());
                options
            })),
            timeout: Duration::from_millis(settings.health_check_timeout_ms),
            healthy_threshold: settings.healthy_threshold.max(1),
            unhealthy_threshold: settings.unhealthy_threshold.max(1),
        }
    }
}

#[async_trait]
impl HealthCheck for ServerHealthCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        let Some(server) = server_of(target) else {
            return Ok(());
        };
        let Some(path) = &server.health_check_url else {
            return Ok(());
        };
        let sni = if server.tls {
            server.sni.clone()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(target.addr.clone(), server.tls, sni);
        peer.options.connection_timeout = Some(self.timeout);
        peer.options.total_connection_timeout = Some(self.timeout);
        peer.options.read_timeout = Some(self.timeout);
        peer.options.write_timeout = Some(self.timeout);
        let check = async {
            let (mut session, _) = self.connector.get_http_session(&peer).await?;
            let mut req = RequestHeader::build("GET", path.as_bytes(), None)?;
            req.insert_header("Host", server.host_header.as_str())?;
            req.insert_header("User-Agent", "sluice-health-check")?;
            session.write_request_header(Box::new(req)).await?;
            session.finish_request_body().await?;
            session.read_response_header().await?;
            let status = session
                .response_header()
                .map(|r| r.status.as_u16())
                .unwrap_or(0);
            if !(200..300).contains(&status) {
                return Error::e_explain(
                    ErrorType::CustomCode("health check status", status),
                    format!("GET {path} answered {status}"),
                );
            }
            while session.read_response_body().await?.is_some() {}
            Ok(())
        };
        match tokio::time::timeout(self.timeout, check).await {
            Ok(r) => r,
            Err(_) => Error::e_explain(ErrorType::ReadTimedout, "health check timed out"),
        }
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        if let Some(server) = server_of(target) {
            log::warn!(
                "upstream server {} ({}) is now {}",
                server.name,
                target.addr,
                if healthy { "healthy" } else { "unhealthy" }
            );
        }
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.healthy_threshold
        } else {
            self.unhealthy_threshold
        }
    }
}
