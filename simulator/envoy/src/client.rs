//! A raw HTTP/1.1 client for loopback tests: one connection per request,
//! header lines written exactly as given (repeated names stay repeated).
//! Never panics; every failure is an `io::Error`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status, header lines in order, body.
#[derive(Clone, Debug, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lowercase), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` with extra header lines (`Host` among them if wanted).
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &[u8])]) -> io::Result<Response> {
    let mut request = Vec::with_capacity(256);
    request.extend_from_slice(format!("GET {path} HTTP/1.1\r\n").as_bytes());
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    for (name, value) in headers {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    exchange(addr, &request)
}

/// Sends raw request bytes and reads one response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    stream.write_all(request)?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut response = Response {
        status,
        ..Response::default()
    };
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut raw = Vec::new();
        reader.read_until(b'\n', &mut raw)?;
        let text = raw
            .strip_suffix(b"\r\n")
            .or_else(|| raw.strip_suffix(b"\n"))
            .unwrap_or(&raw);
        if text.is_empty() {
            break;
        }
        if let Some(colon) = text.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&text[..colon]).to_ascii_lowercase();
            let value = text[colon + 1..].trim_ascii().to_vec();
            if name == "content-length" {
                length = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok());
            }
            if name == "transfer-encoding" && value.eq_ignore_ascii_case(b"chunked") {
                chunked = true;
            }
            response.headers.push((name, value));
        }
    }
    match length {
        _ if chunked => response.body = read_chunked(&mut reader)?,
        Some(n) => {
            response.body = vec![0; n];
            reader.read_exact(&mut response.body)?;
        }
        None => {
            reader.read_to_end(&mut response.body)?;
        }
    }
    Ok(response)
}

/// Reads a `transfer-encoding: chunked` body (trailers are discarded).
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size {line:?}"),
            )
        })?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}
