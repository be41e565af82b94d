//! The TLS certificate a URL presents: verified against the system's roots (and
//! `SSL_CERT_FILE`, as OpenSSL and rustls-native-certs honour it) plus the Mozilla roots,
//! with its expiry — for `doctor` and `verify`.

use std::sync::Arc;

use jiff::Timestamp;

/// A certificate chain that verified for `host`.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub not_after: Timestamp,
    pub days_left: i64,
}

/// Certificates expiring within this many days are reported.
pub const WARN_DAYS: i64 = 30;

fn roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    roots
}

/// Connect to `host:port`, complete a verified TLS handshake for `host`, and read the
/// leaf certificate's expiry. An untrusted, mismatched or expired certificate is an
/// error naming why.
pub async fn certificate(host: &str, port: u16) -> Result<Certificate, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host}: {e}"))?;
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| format!("{host}:{port}: timed out"))?
    .map_err(|e| format!("{host}:{port}: {e}"))?;
    let tls = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| format!("{host}:{port}: the TLS handshake timed out"))?
    .map_err(|e| format!("the TLS handshake with {host} failed: {e}"))?;
    let (_, session) = tls.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| format!("{host} presented no certificate"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("{host}'s certificate cannot be read: {e}"))?;
    let not_after =
        Timestamp::from_second(cert.validity().not_after.timestamp()).map_err(|e| e.to_string())?;
    let days_left = not_after.duration_since(Timestamp::now()).as_hours() / 24;
    Ok(Certificate {
        not_after,
        days_left,
    })
}

impl Certificate {
    /// Whether it expires within [`WARN_DAYS`].
    pub fn expiring(&self) -> bool {
        self.days_left < WARN_DAYS
    }

    /// "valid until 2027-03-05 00:00 UTC (89 days left)".
    pub fn describe(&self) -> String {
        format!(
            "valid until {} ({} days left)",
            crate::text::short_time(self.not_after),
            self.days_left
        )
    }
}

/// The plain-HTTP address to check for a redirect to an https URL: `http://host/` when
/// the URL uses the default port. Another port has no HTTP counterpart: `None`.
pub fn plain_http(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "https" || parsed.port().is_some() {
        return None;
    }
    Some(format!("http://{}/", parsed.host_str()?))
}

/// Whether a response redirects to HTTPS.
pub fn redirects_to_https(r: &reqwest::Response) -> bool {
    r.status().is_redirection()
        && r.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("https://"))
}
