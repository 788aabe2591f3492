//! TLS to PostgreSQL (`sslmode`, `sslrootcert`) against a real TLS-only
//! server: each test starts a private cluster with `scripts/pg-test-cluster
//! start-tls` (a throwaway CA, a certificate for localhost and 127.0.0.1,
//! pg_hba `hostssl` only, so every TCP connection it accepts is encrypted)
//! and stops it at the end. Missing PostgreSQL binaries or openssl fail the
//! tests, never skip them.

use crate::util::{golden_dir, pg_admin_url, repo_root};
use ps_spec::Value;
use ps_warehouse::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

struct TlsCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let dir = tempfile::Builder::new()
            .prefix("ps-pgtls")
            .tempdir_in("/tmp")
            .unwrap();
        let out = Command::new(repo_root().join("scripts/pg-test-cluster"))
            .arg("start-tls")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot start a TLS PostgreSQL cluster (scripts/setup installs the server and openssl): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::fs::read_to_string(dir.path().join("port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        TlsCluster { dir, port }
    }

    /// The URL of database `postgres` on host `host`, with `params`.
    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/ca.crt")
    }

    fn wrong_ca(&self) -> PathBuf {
        self.dir.path().join("tls/wrong-ca.crt")
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/pg-test-cluster"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// Whether this connection to the server is encrypted, as the server sees it.
fn encrypted(url: &str) -> bool {
    let mut wh = ps_warehouse::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let rows = wh
        .query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .unwrap();
    rows == vec![vec![Value::Bool(true)]]
}

/// The error of connecting to `url`, which must fail.
fn connect_error(url: &str) -> ps_warehouse::Error {
    match ps_warehouse::open(url) {
        Ok(_) => panic!("{url}: connected, but it should have failed"),
        Err(e) => e,
    }
}

fn assert_mentions(e: &ps_warehouse::Error, words: &[&str]) {
    let text = e.to_string();
    for w in words {
        assert!(text.contains(w), "error does not mention {w:?}: {text}");
    }
}

#[test]
fn golden_case_study_syncs_over_sslmode_require() {
    let cluster = TlsCluster::start();
    let url = cluster.url("127.0.0.1", "sslmode=require");
    assert!(
        encrypted(&url),
        "sslmode=require gave an unencrypted connection"
    );

    // The golden config with its warehouse on the TLS server. The server
    // accepts TCP connections only over TLS, so the sync's are encrypted.
    let dir = tempfile::tempdir().unwrap();
    let golden = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let mut config = String::new();
    let mut replaced = false;
    for line in golden.lines() {
        if line.trim_start().starts_with("url") && !replaced {
            config.push_str(&format!("url = {url:?}\n"));
            replaced = true;
        } else {
            config.push_str(line);
            config.push('\n');
        }
    }
    assert!(replaced, "the golden config has a warehouse url");
    let config_path = dir.path().join("profiles-sync.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .arg("--config")
        .arg(&config_path)
        .arg("sync")
        .arg(golden_dir().join("case-study.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sync over sslmode=require failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    crate::util::assert_golden_tables(&url, "over TLS");
}

#[test]
fn verify_modes_check_the_ca_and_the_host_name() {
    let cluster = TlsCluster::start();
    let ca = format!("sslrootcert={}", cluster.ca().display());
    let wrong = format!("sslrootcert={}", cluster.wrong_ca().display());

    // The right CA: verify-full by IP and by name (both in the certificate),
    // verify-ca, and require with a root certificate (verified like verify-ca).
    for (host, mode) in [
        ("127.0.0.1", "verify-full"),
        ("localhost", "verify-full"),
        ("127.0.0.1", "verify-ca"),
        ("127.0.0.1", "require"),
    ] {
        let url = cluster.url(host, &format!("sslmode={mode}&{ca}"));
        assert!(encrypted(&url), "{url}: not encrypted");
    }

    // A CA that did not sign the server's certificate.
    for mode in ["verify-full", "verify-ca", "require"] {
        let e = connect_error(&cluster.url("127.0.0.1", &format!("sslmode={mode}&{wrong}")));
        assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
        assert_mentions(
            &e,
            &[
                "UnknownIssuer",
                "not signed by the CA in sslrootcert",
                &format!("sslmode={mode}"),
                "wrong-ca.crt",
            ],
        );
    }

    // A host name the certificate does not cover (hostaddr still reaches the
    // server): verify-full refuses, verify-ca does not check names.
    let other_name = |mode: &str| {
        format!(
            "postgres://postgres@db.example.invalid:{}/postgres?hostaddr=127.0.0.1&sslmode={mode}&{ca}",
            cluster.port
        )
    };
    let e = connect_error(&other_name("verify-full"));
    assert_mentions(
        &e,
        &[
            "certificate not valid for name",
            "db.example.invalid",
            "sslmode=verify-full",
        ],
    );
    assert!(encrypted(&other_name("verify-ca")));

    // A root certificate that cannot be read, or is not a certificate.
    let e = connect_error(&cluster.url(
        "127.0.0.1",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ));
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_mentions(&e, &["sslrootcert=/nonexistent/ca.pem", "cannot read"]);
    let e = connect_error(&cluster.url(
        "127.0.0.1",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            cluster.dir.path().join("tls/server.ext").display()
        ),
    ));
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_mentions(&e, &["sslrootcert=", "no PEM certificate"]);
    // verify modes without a root certificate, and modes that do not exist.
    let e = connect_error(&cluster.url("127.0.0.1", "sslmode=verify-full"));
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_mentions(&e, &["sslmode=verify-full needs sslrootcert"]);
    let e = connect_error(&cluster.url("127.0.0.1", "sslmode=always"));
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_mentions(&e, &["sslmode=\"always\""]);
}

#[test]
fn plain_connections_and_tls_less_servers_fail_clearly() {
    let cluster = TlsCluster::start();
    // The default (prefer) encrypts when the server offers TLS.
    assert!(encrypted(&cluster.url("127.0.0.1", "")));
    // sslmode=disable against a hostssl-only server: the server refuses,
    // and the message says what to change.
    let e = connect_error(&cluster.url("127.0.0.1", "sslmode=disable"));
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert_mentions(
        &e,
        &["no encryption", "sslmode=disable", "use sslmode=require"],
    );

    // The shared test server runs without TLS: require fails saying so,
    // prefer (the default) and disable connect unencrypted.
    let plain = pg_admin_url();
    let sep = if plain.contains('?') { '&' } else { '?' };
    let e = connect_error(&format!("{plain}{sep}sslmode=require"));
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert_mentions(&e, &["sslmode=require", "the server does not offer TLS"]);
    assert!(!encrypted(&plain));
    assert!(!encrypted(&format!("{plain}{sep}sslmode=disable")));
}
