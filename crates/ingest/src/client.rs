//! A minimal blocking HTTP/1.1 client with keep-alive.
//!
//! Enough for `profiles-sync query` (one request to the local server), the
//! serve benchmark (many small requests on kept-alive connections) and the
//! tests (status codes, headers and bodies exactly as sent on the wire),
//! without pulling an HTTP client stack into the build.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header names and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One kept-alive connection to `addr`, opened on first use and again after
/// the server closes it.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    timeout: Duration,
}

impl Client {
    /// A client for the server at `addr`; connects on the first request.
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            conn: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Read/write timeout per request (default 30 s).
    pub fn with_timeout(mut self, t: Duration) -> Client {
        self.timeout = t;
        self
    }

    /// Sends a request and reads the answer. A connection the server had
    /// already closed (idle keep-alive) is retried once on a new one, but
    /// only when the request could not have been received.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.try_request(method, path, headers, body) {
            Ok(r) => Ok(r),
            Err(e) if reused && is_stale(&e) => {
                self.conn = None;
                self.try_request(method, path, headers, body)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.conn = Some(BufReader::with_capacity(64 * 1024, s));
        }
        let conn = self.conn.as_mut().expect("connected above");
        let mut req = Vec::with_capacity(body.len() + 256);
        write!(
            req,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        )?;
        for (k, v) in headers {
            write!(req, "{k}: {v}\r\n")?;
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        conn.get_mut().write_all(&req)?;
        let resp = read_response(conn, method == "HEAD")?;
        if resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.conn = None;
        }
        Ok(resp)
    }
}

/// Errors that mean "the kept-alive connection was already closed".
fn is_stale(e: &io::Error) -> bool {
    match e.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => true,
        io::ErrorKind::UnexpectedEof => e.to_string().contains("before the status line"),
        _ => false,
    }
}

fn read_response(r: &mut BufReader<TcpStream>, head: bool) -> io::Result<Response> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the status line",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the headers",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let resp = |body| Response {
        status,
        headers: headers.clone(),
        body,
    };
    if head || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp(Vec::new()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        return Ok(resp(body));
    }
    if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        let mut body = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                return Ok(resp(body));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    Ok(resp(body))
}

/// The `Authorization` header value for HTTP Basic credentials with an
/// empty password, as Segment's libraries send a write key.
pub fn basic_auth(user: &str) -> String {
    use base64::Engine as _;
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
    format!("Basic {cred}")
}
