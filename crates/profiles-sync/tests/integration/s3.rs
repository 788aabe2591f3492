//! An S3-compatible server on 127.0.0.1 for the `delta+s3://` tests:
//! moto's standalone server (`moto_server`, from PyPI's `moto[server]`),
//! started on a free port in a process group of its own and killed by its
//! pid on drop. Its objects live in its memory, so a test's lake goes with
//! it. moto_server missing is a failure, never a skip: `scripts/setup`
//! installs it.

use ps_ingest::client::Client;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials and region the tests give both the binary and the Python
/// reader. moto accepts any; they are set so the real signing code runs.
pub(crate) const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "ps-test-access-key-id"),
    ("AWS_SECRET_ACCESS_KEY", "ps-test-secret-access-key"),
    ("AWS_REGION", "us-east-1"),
];

/// A running server ([`S3Server::start`]).
pub(crate) struct S3Server {
    addr: SocketAddr,
    child: Child,
    /// Its log; removed on drop, after the server stops.
    dir: tempfile::TempDir,
    buckets: std::sync::atomic::AtomicU32,
}

fn moto_server() -> &'static str {
    let found = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "moto_server is not installed: run scripts/setup (it installs PyPI's moto[server], pinned), \
         or `python3 -m pip install 'moto[server]==5.2.1'`"
    );
    "moto_server"
}

impl S3Server {
    /// Starts the server on a free port of 127.0.0.1 and waits until it
    /// answers.
    pub(crate) fn start() -> S3Server {
        use std::os::unix::process::CommandExt;
        let bin = moto_server();
        let dir = tempfile::tempdir().unwrap();
        let port = crate::util::free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        let server = S3Server {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            child,
            dir,
            buckets: Default::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.request("GET", "/").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {} within 60 s:\n{}",
                server.addr,
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        Client::new(self.addr)
            .with_timeout(Duration::from_secs(10))
            .request(method, path, &[], b"")
            .map(|r| r.status)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a new empty bucket and returns its name.
    pub(crate) fn bucket(&self) -> String {
        let n = self
            .buckets
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("lake{n}");
        let status = self.request("PUT", &format!("/{name}")).unwrap();
        assert_eq!(status, 200, "creating bucket {name}:\n{}", self.log());
        name
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
