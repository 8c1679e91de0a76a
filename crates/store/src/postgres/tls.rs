//! TLS to the database, as libpq's `sslmode` and `sslrootcert` ask for it, with rustls.
//!
//! tokio-postgres knows `sslmode=disable|prefer|require` and leaves certificate checks to the
//! TLS connector, so the URL's `sslmode` and `sslrootcert` are read here, the driver is given
//! the part it knows, and the connector verifies what the mode asks for:
//!
//! | `sslmode`     | TLS                         | the server's certificate                   |
//! |---------------|-----------------------------|--------------------------------------------|
//! | `disable`     | never                       | —                                          |
//! | `prefer`      | when the server offers it   | not checked                                |
//! | `require`     | always                      | not checked (with `sslrootcert`: as `verify-ca`) |
//! | `verify-ca`   | always                      | signed by a root of `sslrootcert`          |
//! | `verify-full` | always                      | signed by a trusted root, for the host name |
//!
//! `prefer` is the default, as in libpq. The trusted roots are those of the `sslrootcert`
//! file (PEM) when one is given, else the system's (`sslrootcert=system` says so explicitly).
//! As libpq does with `sslrootcert=system`, `verify-ca` refuses the system roots: any publicly
//! trusted certificate would pass without a host name to match.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Error, Result};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::backend(format!(
                    "sslmode={other}: use disable, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }
}

/// The driver's configuration and the TLS connector for a `postgres://` URL (or a key=value
/// connection string, whose `sslmode` the driver reads itself).
pub(super) fn configure(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let (rest, mode, root_cert) = split(url)?;
    let mut config: tokio_postgres::Config = rest.parse()?;
    let mode = match mode {
        Some(mode) => mode,
        None => match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        },
    };
    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    let connector = connector(mode, root_cert.as_deref())?;
    Ok((config, connector))
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query: the URL without them, and their
/// values. A key=value string is returned as it is.
fn split(url: &str) -> Result<(String, Option<SslMode>, Option<String>)> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_owned(), None, None));
    };
    let (mut mode, mut root_cert) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| Error::backend(format!("{key} in the database URL is not UTF-8")))
        };
        match key {
            "sslmode" => mode = Some(SslMode::parse(&value()?)?),
            "sslrootcert" => root_cert = Some(value()?).filter(|v| v != "system"),
            _ => kept.push(pair),
        }
    }
    let rest = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((rest, mode, root_cert))
}

/// A rustls connector that checks the server's certificate as `mode` asks, against the roots
/// of the `root_cert` file (PEM), or the system's.
fn connector(mode: SslMode, root_cert: Option<&str>) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root_cert) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Arc::new(Lenient {
            provider: provider.clone(),
            chain: None,
        }),
        (SslMode::VerifyCa, None) => {
            return Err(Error::backend(
                "sslmode=verify-ca needs sslrootcert=FILE (the CA that signed the server's \
                 certificate): with the system roots any publicly trusted certificate would \
                 pass; use sslmode=verify-full to check the host name against them",
            ))
        }
        (SslMode::Require | SslMode::VerifyCa, Some(file)) => Arc::new(Lenient {
            provider: provider.clone(),
            chain: Some(webpki(Some(file), &provider)?),
        }),
        (SslMode::VerifyFull, file) => webpki(file, &provider)?,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::driver)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The standard verifier (chain and host name) over the roots of `file`, or the system's.
fn webpki(file: Option<&str>, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>> {
    let mut roots = RootCertStore::empty();
    match file {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::backend(format!("sslrootcert={file}: {e}")))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::backend(format!(
                    "sslrootcert={file}: no certificate in it"
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::backend(format!(
                    "no system root certificates found ({:?}): give sslrootcert=FILE",
                    found.errors
                )));
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(Error::driver)
}

/// The checks of `prefer`, `require` and `verify-ca`, less than the standard verifier's:
/// without `chain`, none (libpq's meaning: encrypted, the server not authenticated); with it,
/// the chain must lead to one of its roots but the host name is not compared (the standard
/// verifier checks the chain before the name, so a name mismatch means the chain passed). The
/// handshake's signatures are checked either way.
#[derive(Debug)]
struct Lenient {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `split` reads from a URL, and what it leaves for the driver.
    #[test]
    fn sslmode_and_sslrootcert_are_read_from_the_url() {
        let cases: &[(&str, &str, Option<SslMode>, Option<&str>)] = &[
            ("postgres://u@h/db", "postgres://u@h/db", None, None),
            (
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
                "postgres://u@h/db",
                Some(SslMode::VerifyFull),
                Some("/etc/ca.pem"),
            ),
            (
                "postgresql://u@h:5/db?application_name=x&sslmode=verify-ca&connect_timeout=3",
                "postgresql://u@h:5/db?application_name=x&connect_timeout=3",
                Some(SslMode::VerifyCa),
                None,
            ),
            (
                "postgres://u@h/db?sslrootcert=system&sslmode=require",
                "postgres://u@h/db",
                Some(SslMode::Require),
                None,
            ),
            (
                "host=h sslmode=require",
                "host=h sslmode=require",
                None,
                None,
            ),
        ];
        for (url, rest, mode, root) in cases {
            let got = split(url).unwrap();
            assert_eq!(
                (got.0.as_str(), got.1, got.2.as_deref()),
                (*rest, *mode, *root),
                "{url}"
            );
        }
    }

    /// Bad settings are refused with a message that names them, before any connection.
    #[test]
    fn bad_tls_settings_are_refused_with_a_reason() {
        let cases = [
            ("postgres://u@h/db?sslmode=allow-all", "sslmode=allow-all"),
            ("postgres://u@h/db?sslmode=verify-ca", "needs sslrootcert"),
            (
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "sslrootcert=/nonexistent/ca.pem",
            ),
        ];
        for (url, expected) in cases {
            let err = configure(url).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(expected)),
                "{url}: {err:?}"
            );
        }
    }

    /// The driver is asked for TLS whenever the mode needs it, and for none with `disable`.
    #[test]
    fn the_driver_gets_the_mode_it_knows() {
        use tokio_postgres::config::SslMode as Driver;
        let cases = [
            ("postgres://u@h/db", Driver::Prefer),
            ("postgres://u@h/db?sslmode=disable", Driver::Disable),
            ("postgres://u@h/db?sslmode=require", Driver::Require),
            ("postgres://u@h/db?sslmode=verify-full", Driver::Require),
            ("host=h sslmode=disable", Driver::Disable),
        ];
        for (url, expected) in cases {
            let (config, _) = configure(url).unwrap();
            assert_eq!(config.get_ssl_mode(), expected, "{url}");
        }
    }
}
