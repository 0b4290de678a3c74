//! The metrics endpoint: a small HTTP/1.1 server on its own thread answering `GET /metrics`
//! (the registry's exposition text) and `GET /healthz` (200 or 503 with a JSON body), one
//! request per connection. Scrapes are rare and tiny, so a thread and blocking sockets do.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::registry::Registry;

use super::Health;

/// A running endpoint; dropping it stops the thread.
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Serves `registry` and `health` on `addr` (`host:port`; port 0 picks a free one).
pub fn serve(
    addr: &str,
    registry: Registry,
    health: Arc<dyn Health>,
) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(e) = answer(stream, &registry, health.as_ref()) {
                            tracing::debug!("metrics request: {e}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => tracing::warn!("metrics endpoint: {e}"),
                }
            }
        })?;
    Ok(MetricsServer {
        addr,
        stop,
        thread: Some(thread),
    })
}

fn answer(stream: TcpStream, registry: &Registry, health: &dyn Health) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The rest of the head, up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line.trim_end() != "" {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            super::encode(registry),
        ),
        ("GET", "/healthz") => {
            let (ok, body) = health.health();
            let status = if ok {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "application/json", body + "\n")
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics or /healthz\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    struct Fixed(bool);
    impl Health for Fixed {
        fn health(&self) -> (bool, String) {
            (self.0, format!("{{\"healthy\":{}}}", self.0))
        }
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_metrics_and_health() {
        let mut registry = Registry::default();
        let c = prometheus_client::metrics::counter::Counter::<u64>::default();
        registry.register("things", "Things", c.clone());
        c.inc_by(3);
        let server = serve("127.0.0.1:0", registry, Arc::new(Fixed(false))).unwrap();
        let m = get(server.addr, "/metrics");
        assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
        assert!(m.contains("\nthings_total 3\n"), "{m}");
        let h = get(server.addr, "/healthz");
        assert!(
            h.starts_with("HTTP/1.1 503") && h.ends_with("{\"healthy\":false}\n"),
            "{h}"
        );
        assert!(get(server.addr, "/nope").starts_with("HTTP/1.1 404"));
    }
}
