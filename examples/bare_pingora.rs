//! The benchmark baseline: a bare Pingora 0.9 proxy with one fixed upstream,
//! one worker thread, no policy. `load-tests/bench.sh` compares the gateway
//! against it so the figures show Sluice's own overhead.
//!
//! Usage: `bare_pingora LISTEN_ADDR UPSTREAM_ADDR`
//!
//! `BARE_READ_BUFFER=BYTES` sets the read buffer under each accepted
//! connection (Pingora's default otherwise); `0` is what the gateway's
//! plain-HTTP listeners use, for the floor of `load-tests/streams.sh`.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Bare {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2).and_then(|u| u.parse().ok()))
    else {
        eprintln!("usage: bare_pingora LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Bare { upstream });
    match std::env::var("BARE_READ_BUFFER").map(|v| v.parse::<usize>()) {
        Ok(Ok(read)) => {
            use pingora::listeners::{
                L4BufferSettings, ListenerConfig, DEFAULT_L4_WRITE_BUFFER_SIZE,
            };
            let buffers = L4BufferSettings::new(read, DEFAULT_L4_WRITE_BUFFER_SIZE);
            proxy.add_listener(ListenerConfig::tcp(listen).l4_buffer(buffers));
        }
        Ok(Err(e)) => {
            eprintln!("BARE_READ_BUFFER: {e}");
            std::process::exit(2);
        }
        Err(_) => proxy.add_tcp(listen),
    }
    server.add_service(proxy);
    server.run_forever();
}
