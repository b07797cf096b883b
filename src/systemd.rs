//! systemd's notification protocol (`sd_notify`): when the service runs
//! under systemd (`NOTIFY_SOCKET` set, `Type=notify`), the gateway says
//! when it is ready, and a process that took the listeners over from the
//! old one (an upgrade by SIGUSR2) says it is the service's main process
//! now (`MAINPID=`). Without `NOTIFY_SOCKET` nothing is sent.

use std::os::unix::net::UnixDatagram;

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
