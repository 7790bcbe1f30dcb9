//! A fault-injecting TCP proxy in front of an S3 server, for the tests of
//! the S3 store under faults: it passes bytes through, or answers new
//! connections with `503 Service Unavailable`, or holds every chunk the
//! server sends for a while, or stops listening altogether (a stopped server:
//! connections are refused) and cuts the connections it carries.
//!
//! Requests are signed for the proxy's address, which it passes on as it is;
//! the server checks the signature against the `Host` it receives, so the
//! proxy is invisible to it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does with each new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Pass,
    /// One connection in `one_in` gets `503 Service Unavailable` (S3's
    /// `ServiceUnavailable`) to its first request, and is closed.
    Unavailable {
        one_in: u64,
    },
    /// Every chunk the server sends waits `delay` first.
    Slow(Duration),
}

struct State {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    /// No listener: connections are refused, as by a stopped server.
    down: AtomicBool,
    /// Live connections (both ends), to cut when the server "stops".
    live: Mutex<Vec<TcpStream>>,
    connections: AtomicU64,
    unavailable: AtomicU64,
    /// Request lines seen going to the server (a chunk boundary inside one
    /// may hide it: a close count, not an exact one).
    requests: AtomicU64,
    stop: AtomicBool,
}

pub(super) struct Proxy {
    pub endpoint: String,
    state: Arc<State>,
}

const UNAVAILABLE_BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>injected by the test proxy</Message></Error>";

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 in front of `upstream`
    /// (`http://host:port`), passing everything through.
    pub(super) fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("an endpoint of the form http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            mode: Mutex::new(Mode::Pass),
            down: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = state.clone();
        std::thread::spawn(move || accept_loop(Some(listener), addr, &s));
        Proxy {
            endpoint: format!("http://{addr}"),
            state,
        }
    }

    /// What new connections get from now on.
    pub(super) fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Stops the "server": the port refuses connections, and every
    /// connection open now is cut.
    pub(super) fn stop_server(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        for conn in self.state.live.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Starts the "server" again on the same port.
    pub(super) fn start_server(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// Requests passed to the server so far (about).
    pub(super) fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far, and those answered 503.
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.state.connections.load(Ordering::SeqCst),
            self.state.unavailable.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.stop_server();
    }
}

/// Accepts connections while up; while down, holds no listener (so the port
/// refuses connections) and binds it again when the server comes back.
fn accept_loop(mut listener: Option<TcpListener>, addr: SocketAddr, state: &Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        if state.down.load(Ordering::SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => {
                if let Ok(l) = TcpListener::bind(addr) {
                    l.set_nonblocking(true).unwrap();
                    listener.insert(l)
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
        };
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Ok((conn, _)) => {
                let s = state.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Serves one client connection as the mode says.
fn serve(client: TcpStream, state: &Arc<State>) {
    let _ = client.set_nonblocking(false);
    let n = state.connections.fetch_add(1, Ordering::SeqCst);
    let mode = *state.mode.lock().unwrap();
    if let Mode::Unavailable { one_in } = mode
        && n.is_multiple_of(one_in.max(1))
    {
        state.unavailable.fetch_add(1, Ordering::SeqCst);
        unavailable(client);
        return;
    }
    let Ok(upstream) = TcpStream::connect(state.upstream) else {
        return;
    };
    let delay = match mode {
        Mode::Slow(d) => Some(d),
        _ => None,
    };
    {
        let mut live = state.live.lock().unwrap();
        for end in [&client, &upstream] {
            if let Ok(clone) = end.try_clone() {
                live.push(clone);
            }
        }
    }
    let (Ok(client_in), Ok(upstream_out)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let s = state.clone();
    std::thread::spawn(move || pipe(client_in, upstream_out, None, Some(&s.requests)));
    pipe(upstream, client, delay, None);
}

/// Copies `from` into `to` until either end closes, each chunk after `delay`;
/// counts the request lines that go by in `requests`.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Option<Duration>,
    requests: Option<&AtomicU64>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(count) = requests {
            let lines = buf[..n].windows(10).filter(|w| w == b" HTTP/1.1\r").count();
            count.fetch_add(lines as u64, Ordering::SeqCst);
        }
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads a request's head and answers `503 Service Unavailable`, closing.
fn unavailable(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 << 10 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{UNAVAILABLE_BODY}",
        UNAVAILABLE_BODY.len()
    );
    let _ = client.write_all(response.as_bytes());
    let _ = client.shutdown(Shutdown::Both);
}
