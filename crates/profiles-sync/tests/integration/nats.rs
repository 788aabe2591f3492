//! A 3-node NATS JetStream cluster on 127.0.0.1 for the multi-node tests
//! (issue 23): free ports, a temp dir per cluster, every node started in a
//! process group of its own and stopped by its pid (on drop too).
//! nats-server missing is a failure, never a skip: `scripts/setup`
//! installs it.

use crate::util::free_port;
use ps_ingest::client::Client;
use serde_json::Value as Json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node: its ports and, while it runs, its process.
struct Node {
    client: u16,
    route: u16,
    http: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running cluster ([`NatsCluster::start`]).
pub(crate) struct NatsCluster {
    /// Configs, logs and data; removed on drop, after the nodes stop.
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

fn nats_server() -> &'static str {
    let found = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "nats-server is not installed: run scripts/setup (it installs Debian's nats-server)"
    );
    "nats-server"
}

impl NatsCluster {
    /// Starts `n` nodes clustered with each other and waits until every
    /// one answers `/healthz`. A free port can be taken by another test
    /// between `free_port` and nats-server's bind: a node that failed so is
    /// retried with a new cluster on new ports (any other failure panics).
    pub(crate) fn start(n: usize) -> NatsCluster {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match NatsCluster::try_start(n) {
                Ok(c) => return c,
                Err(log) if attempt < 3 && log.contains("address already in use") => {}
                Err(log) => panic!("nats cluster did not start (attempt {attempt}):\n{log}"),
            }
        }
    }

    /// [`NatsCluster::start`], once: the failing node's log on failure.
    fn try_start(n: usize) -> Result<NatsCluster, String> {
        let bin = nats_server();
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                client: free_port(),
                route: free_port(),
                http: free_port(),
                conf: dir.path().join(format!("n{i}.conf")),
                log: dir.path().join(format!("n{i}.log")),
                child: None,
            })
            .collect();
        for i in 0..n {
            let routes: Vec<String> = nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, o)| format!("nats-route://127.0.0.1:{}", o.route))
                .collect();
            let node = &nodes[i];
            let conf = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\n\
                 jetstream {{ store_dir: \"{}\", max_file_store: 1GB, max_memory_store: 64MB }}\n\
                 cluster {{ name: ps, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                node.client,
                node.http,
                dir.path().join(format!("data-n{i}")).display(),
                node.route,
                routes.join(", ")
            );
            std::fs::write(&node.conf, conf).unwrap();
        }
        let mut cluster = NatsCluster { _dir: dir, nodes };
        for i in 0..n {
            cluster.spawn(i, bin);
        }
        for i in 0..n {
            cluster.healthy(i, Duration::from_secs(30))?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize, bin: &str) {
        use std::os::unix::process::CommandExt;
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&node.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// Waits until node `i` answers `/healthz` with 200.
    fn wait_healthy(&self, i: usize, limit: Duration) {
        if let Err(log) = self.healthy(i, limit) {
            panic!("{log}");
        }
    }

    /// Whether node `i` answers `/healthz` with 200 within `limit`; if
    /// not, its log.
    fn healthy(&self, i: usize, limit: Duration) -> Result<(), String> {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.nodes[i].http).parse().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            let ok = Client::new(addr)
                .with_timeout(Duration::from_secs(2))
                .request("GET", "/healthz", &[], b"")
                .is_ok_and(|r| r.status == 200);
            if ok {
                return Ok(());
            }
            let log = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
            // A node that could not bind has exited: no need to wait on.
            if Instant::now() >= deadline || log.contains("address already in use") {
                return Err(format!(
                    "nats node {i} not healthy within {limit:?}:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `[log] url`: every node's client address.
    pub(crate) fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILL of node `i`, by its pid.
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            signal(c.id(), "KILL");
            let _ = c.wait();
        }
    }

    /// Starts node `i` again (after [`NatsCluster::kill`]) and waits until
    /// it is healthy.
    pub(crate) fn restart(&mut self, i: usize) {
        self.spawn(i, nats_server());
        self.wait_healthy(i, Duration::from_secs(30));
    }
}

impl NatsCluster {
    /// What live node `i`'s monitoring endpoint says about `stream`: its
    /// `stream_detail` entry of `/jsz` (the nodes holding a replica list
    /// it), if any.
    fn stream_detail(&self, i: usize, stream: &str) -> Option<Json> {
        self.nodes[i].child.as_ref()?;
        let addr: SocketAddr = format!("127.0.0.1:{}", self.nodes[i].http).parse().unwrap();
        let r = Client::new(addr)
            .with_timeout(Duration::from_secs(2))
            .request("GET", "/jsz?accounts=true&streams=true", &[], b"")
            .ok()?;
        let jsz: Json = serde_json::from_slice(&r.body).ok()?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
            .find(|d| d["name"] == stream)
    }

    /// The node leading `stream` (its Raft leader: the one that orders and
    /// acknowledges publishes), as a live node reports it; waits up to
    /// `limit` for one to be known (after an election, say).
    pub(crate) fn stream_leader(&self, stream: &str, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            for i in 0..self.nodes.len() {
                let leader = self
                    .stream_detail(i, stream)
                    .and_then(|d| d["cluster"]["leader"].as_str().map(str::to_owned));
                if let Some(n) = leader.and_then(|l| l.strip_prefix('n')?.parse::<usize>().ok()) {
                    if self.nodes.get(n).is_some_and(|node| node.child.is_some()) {
                        return n;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no live node reports a leader of stream {stream} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last sequence of `stream`, as its leader reports it.
    pub(crate) fn last_seq(&self, stream: &str) -> u64 {
        let leader = self.stream_leader(stream, Duration::from_secs(30));
        let detail = self
            .stream_detail(leader, stream)
            .unwrap_or_else(|| panic!("node n{leader} does not report stream {stream}"));
        detail["state"]["last_seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("no state.last_seq in {detail}"))
    }

    /// Every message of `space`'s part of the log, in the log's order, read
    /// back as a resolver reads it (`lease_ttl` must be the deployment's:
    /// the client checks it against the lease bucket).
    pub(crate) fn read_space(&self, space: &str, lease_ttl: Duration) -> Vec<ps_log::Entry> {
        use ps_log::EventLog;
        let last = self.last_seq(ps_log::STREAM);
        let mut cfg = ps_log::LogConfig::new(&self.url()).unwrap();
        cfg.lease_ttl = lease_ttl;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        rt.block_on(async {
            let log = ps_log::JetStream::connect(&cfg).await.unwrap();
            let mut out: Vec<ps_log::Entry> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut reader = None;
            while out.last().map_or(0, |e| e.seq) < last {
                assert!(
                    Instant::now() < deadline,
                    "read {} messages of the log up to {:?}, want up to {last}",
                    out.len(),
                    out.last().map(|e| e.seq)
                );
                // A consumer can fail to be made while a node is down (its
                // placement may pick that node): made again on an error.
                let after = out.last().map_or(0, |e| e.seq);
                let r = match reader.take() {
                    Some(r) => r,
                    None => match log.reader(space, after).await {
                        Ok(r) => r,
                        Err(e) => {
                            eprintln!("reading the log: {e}; retrying");
                            continue;
                        }
                    },
                };
                let mut r = r;
                match r.next(10_000, Duration::from_secs(1)).await {
                    Ok(entries) => {
                        out.extend(entries);
                        reader = Some(r);
                    }
                    Err(e) => eprintln!("reading the log: {e}; retrying"),
                }
            }
            out
        })
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Sends `kill -<sig> <pid>` to one process.
pub(crate) fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{sig} {pid} failed");
}
