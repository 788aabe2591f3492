//! TLS for PostgreSQL connections: libpq's `sslmode` and `sslrootcert` URL
//! parameters, on rustls (with ring, so no system OpenSSL is needed).
//!
//! tokio-postgres understands only `sslmode=disable|prefer|require` and no
//! `sslrootcert`, so both are taken out of the URL here and turned into a
//! TLS connector and the driver's `SslMode`:
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers TLS | no (chain only with `sslrootcert`) |
//! | `require` | always, or the connection fails | no (chain only with `sslrootcert`, like libpq) |
//! | `verify-ca` | always | chain up to `sslrootcert` |
//! | `verify-full` | always | chain up to `sslrootcert` and the host name |

use crate::error::{Error, ErrorKind, Result};
use ::postgres::config::SslMode as PgSslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`, with the values this build supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "warehouse.url: sslmode={other:?} is not supported; use disable, prefer, require, verify-ca or verify-full"
                    ),
                ))
            }
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of a PostgreSQL URL and the URL without them.
#[derive(Debug)]
pub(crate) struct TlsSettings {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
    /// The URL with `sslmode` and `sslrootcert` removed, for the driver.
    pub url: String,
}

impl TlsSettings {
    /// Takes `sslmode` and `sslrootcert` out of `url`'s query string.
    pub(crate) fn from_url(url: &str) -> Result<TlsSettings> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut mode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => mode = Some(SslMode::parse(&percent_decode(v))?),
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(v))),
                "sslcert" | "sslkey" | "sslpassword" => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!("warehouse.url: {k} (TLS client certificates) is not supported; use a password"),
                    ))
                }
                _ => rest.push(pair),
            }
        }
        let mode = mode.unwrap_or(SslMode::Prefer);
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "warehouse.url: sslmode={} needs sslrootcert=/path/to/ca.pem (the CA that signed the server's certificate)",
                    mode.name()
                ),
            ));
        }
        if root_cert
            .as_deref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(Error::new(
                ErrorKind::Config,
                "warehouse.url: sslrootcert is empty; give the path of a PEM file",
            ));
        }
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(TlsSettings {
            mode,
            root_cert,
            url,
        })
    }

    /// What the driver is told: it only negotiates; checking is ours.
    pub(crate) fn driver_mode(&self) -> PgSslMode {
        match self.mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        }
    }

    /// A short description for error messages: `sslmode=require`, with the
    /// root certificate when one is used.
    pub(crate) fn describe(&self) -> String {
        match (&self.root_cert, self.mode) {
            (Some(p), m) if m != SslMode::Disable => {
                format!("sslmode={} sslrootcert={}", m.name(), p.display())
            }
            (_, m) => format!("sslmode={}", m.name()),
        }
    }

    /// The rustls connector for these settings. Reads `sslrootcert`.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.root_cert, self.mode) {
            (_, SslMode::Disable) | (None, _) => Arc::new(NoCertCheck(provider.clone())),
            (Some(path), mode) => {
                let roots = load_roots(path)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            Error::new(
                                ErrorKind::Config,
                                format!("warehouse.url sslrootcert={}: {e}", path.display()),
                            )
                        })?;
                Arc::new(ChainCheck {
                    inner: webpki,
                    check_name: mode == SslMode::VerifyFull,
                })
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Config, format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    /// `message` (the driver's connection error) with what it means under
    /// these settings, when the driver's own words are not enough.
    /// `message` (the driver's connection error, whose text with its causes
    /// is `text`) with what it means under these settings, when the
    /// driver's own words are not enough.
    pub(crate) fn explain(
        &self,
        message: String,
        text: &str,
        db: Option<&::postgres::error::DbError>,
    ) -> String {
        if text.contains("server does not support TLS") {
            return format!(
                "{message} ({}: the server does not offer TLS; enable ssl on the server, or use sslmode=prefer or sslmode=disable to connect unencrypted)",
                self.describe()
            );
        }
        if self.mode == SslMode::Disable
            && db.is_some_and(|d| d.message().contains("no encryption"))
        {
            return format!(
                "{message} (sslmode=disable: the server refuses unencrypted connections from here; use sslmode=require or verify-full)"
            );
        }
        if text.contains("UnknownIssuer") {
            return format!(
                "{message} ({}: the server's certificate is not signed by the CA in sslrootcert)",
                self.describe()
            );
        }
        if text.contains("TLS") || text.contains("certificate") {
            return format!("{message} ({})", self.describe());
        }
        message
    }
}

/// The CA certificates of a PEM file, each a trust anchor.
fn load_roots(path: &std::path::Path) -> Result<RootCertStore> {
    let bad = |what: String| {
        Error::new(
            ErrorKind::Config,
            format!("warehouse.url sslrootcert={}: {what}", path.display()),
        )
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(roots)
}

/// `sslmode=prefer|require` without a root certificate: encrypted, the
/// certificate not checked (libpq does the same). The handshake signature
/// is still verified, so the peer holds the certificate's key.
#[derive(Debug)]
struct NoCertCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The WebPKI check against `sslrootcert`; for `verify-ca` (and
/// `require`/`prefer` with a root certificate) a certificate that is valid
/// but names another host is accepted.
#[derive(Debug)]
struct ChainCheck {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for ChainCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // WebPKI checks the chain first and the name last, so a name error
        // means the chain is good.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `%XX` escapes of a URL query value (`+` stays a plus, as in libpq; a
/// `%` not followed by two hex digits stays as it is).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_rootcert_leave_the_url() {
        let s = TlsSettings::from_url(
            "postgres://u:p@h:5432/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(s.url, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(s.driver_mode(), PgSslMode::Require);

        let s = TlsSettings::from_url("postgres://u@h/db").unwrap();
        assert_eq!(s.mode, SslMode::Prefer);
        assert_eq!(s.url, "postgres://u@h/db");
        let s = TlsSettings::from_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            (s.mode, s.url.as_str()),
            (SslMode::Disable, "postgres://u@h/db")
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let e = TlsSettings::from_url("postgres://u@h/db?sslmode=verify_full").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("sslmode=\"verify_full\""), "{e}");
        let e = TlsSettings::from_url("postgres://u@h/db?sslmode=verify-ca").unwrap_err();
        assert!(e.to_string().contains("needs sslrootcert"), "{e}");
        let e = TlsSettings::from_url("postgres://u@h/db?sslcert=/c.pem").unwrap_err();
        assert!(e.to_string().contains("sslcert"), "{e}");

        let s = TlsSettings::from_url(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap();
        let e = s.connector().err().expect("connector() should fail");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.to_string()
                .contains("sslrootcert=/nonexistent/ca.pem: cannot read it"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let s = TlsSettings::from_url(&format!(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert={}",
            junk.display()
        ))
        .unwrap();
        let e = s.connector().err().expect("connector() should fail");
        assert!(
            e.to_string().contains("sslrootcert=") && e.to_string().contains("no PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
