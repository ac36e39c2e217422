//! Tiny HTTP/1.1 upstream servers on loopback that say who served a
//! request: each answers `200` with its workload name as the body and in
//! `x-served-by`, and records the request head it received, so tests can
//! check that baseline traffic arrives untouched.
//!
//! Good enough for tests and demos (keep-alive, `content-length` bodies);
//! not a general server. Never panics on a bad request: it closes the
//! connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A request as an upstream received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The workload that served it.
    pub workload: String,
    /// The request target (`:path`) as it arrived.
    pub path: String,
    /// Header lines in order, names lowercased.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Received {
    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// A set of named upstream servers.
pub struct Upstreams {
    servers: Vec<(String, SocketAddr)>,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Upstreams {
    /// Starts one server per workload name, each on its own loopback port.
    pub fn start<S: AsRef<str>>(workloads: &[S]) -> std::io::Result<Upstreams> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut servers = Vec::new();
        for name in workloads {
            let name = name.as_ref().to_owned();
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let (received, stop) = (received.clone(), stop.clone());
            let workload = name.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (received, workload) = (received.clone(), workload.clone());
                    thread::spawn(move || serve(stream, &workload, &received));
                }
            });
            servers.push((name, addr));
        }
        Ok(Upstreams {
            servers,
            received,
            stop,
        })
    }

    /// The address of `workload`.
    pub fn addr(&self, workload: &str) -> Option<SocketAddr> {
        self.servers
            .iter()
            .find(|(n, _)| n == workload)
            .map(|(_, a)| *a)
    }

    /// Every server, in start order.
    pub fn all(&self) -> &[(String, SocketAddr)] {
        &self.servers
    }

    /// Takes the requests received so far.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, addr) in &self.servers {
            // Wake each accept loop so it sees the stop flag.
            let _ = TcpStream::connect(addr);
        }
    }
}

/// One HTTP/1.1 request as a server reads it.
pub struct Request {
    /// The request target of the request line (`/path?query`).
    pub target: String,
    /// Header lines in order, names lowercased, values trimmed.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Its `content-length` body (at most 1 MiB is kept).
    pub body: Vec<u8>,
    /// Whether it asked to close the connection.
    pub close: bool,
}

/// Reads the next request of a connection; `None` at its end or on a
/// request it cannot read (the caller then closes the connection).
pub fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    let target = line
        .split(|&b| b == b' ')
        .nth(1)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_default();
    let mut headers = Vec::new();
    let mut length = 0usize;
    let mut close = false;
    loop {
        let mut raw = Vec::new();
        if reader.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
            return None;
        }
        let text = raw.strip_suffix(b"\r\n").unwrap_or(&raw);
        if text.is_empty() {
            break;
        }
        let colon = text.iter().position(|&b| b == b':')?;
        let name = String::from_utf8_lossy(&text[..colon]).to_ascii_lowercase();
        let value = text[colon + 1..].trim_ascii().to_vec();
        if name == "content-length" {
            length = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        if name == "connection" && value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
        headers.push((name, value));
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        target,
        headers,
        body,
        close,
    })
}

fn serve(stream: TcpStream, workload: &str, received: &Mutex<Vec<Received>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let (headers, close) = (request.headers, request.close);
        received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Received {
                workload: workload.to_owned(),
                path: request.target,
                headers,
            });
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-served-by: {workload}\r\ncontent-length: {}\r\n\r\n{workload}\n",
            workload.len() + 1
        );
        if writer.write_all(reply.as_bytes()).is_err() || close {
            return;
        }
    }
}
