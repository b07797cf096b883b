//! systemd's notification protocol (`sd_notify`): when the service runs
//! under systemd (`NOTIFY_SOCKET` set, `Type=notify`), the gateway says
//! when it is ready, and a process that took the listeners over from the
//! old one (an upgrade by SIGUSR2) says it is the service's main process
//! now (`MAINPID=`). Without `NOTIFY_SOCKET` nothing is sent.

use pingora::server::ListenFds;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (`READY=1`, `MAINPID=…`, newline-separated) to systemd;
/// returns whether it was sent.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = match path.strip_prefix('@') {
        // An abstract socket (Linux).
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = &sent {
        log::warn!("systemd: notification {state:?} not sent: {e}");
    }
    sent.is_ok()
}

/// Says `READY=1` (with `MAINPID=` after an upgrade) once every one of
/// `addresses` is bound, as Pingora's table of listening sockets `fds`
/// shows (without the table: at once).
///
/// Pingora 0.9.1 has no signal for it: a listening service counts as ready
/// for its dependents before it binds (`ServiceWithDependents` for every
/// `Service`), and a port another process holds is tried again every
/// second for as long as it takes (`listeners::l4`, "is in use, will try
/// again"); so before, systemd heard `READY=1` from a gateway that could
/// not serve yet. The table gets each address as it is bound (or holds
/// them all from the start in an upgrade, the sockets being the old
/// process's), so it is read every 10 ms until complete.
pub async fn ready_when_bound(fds: Option<ListenFds>, addresses: Vec<String>, upgrade: bool) {
    if let Some(fds) = fds {
        let bound = || {
            let table = fds.lock();
            addresses.iter().all(|a| table.get(a).is_some())
        };
        while !bound() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    if upgrade {
        notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    } else {
        notify("READY=1");
    }
}
