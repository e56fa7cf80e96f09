//! TLS over a blocking-style socket, driven by hand: a `rustls::ClientConnection` moved forward
//! with `read_tls` / `write_tls` / `process_new_packets` on a **non-blocking** socket, every wait
//! being [`wait_io`] (socket + signal fd + deadline). Shared by the PostgreSQL connection and
//! the HTTPS push path; it knows nothing about either protocol.
//!
//! Also here: building a `ClientConfig` with the ring provider (never a process default), the
//! three ways to check a server ([`Verify`]), and loading PEM roots.
//!
//! Not here: which mode a protocol picks (PostgreSQL's sslmode lives in `postgres::client`),
//! client certificates (added with the push path).

use super::{IoError, wait_io};
use crate::sys::signals::Signals;
use rustix::event::PollFlags;
use rustix::fd::AsFd;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme, SupportedProtocolVersion,
};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// How the server's certificate is checked.
pub enum Verify {
    /// Accept any certificate (PostgreSQL `sslmode=require` without a root certificate); the
    /// handshake signatures are still verified, so the peer holds the certificate's key.
    Nothing,
    /// The chain must lead to one of these roots; the host name is not checked (`verify-ca`).
    Chain(RootCertStore),
    /// Chain and host name (`verify-full`, HTTPS).
    Full(RootCertStore),
}

/// The ring provider, explicitly: the collector never relies on a process-default provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration for `versions` (`rustls::DEFAULT_VERSIONS` = TLS 1.3 and 1.2).
pub fn client_config(
    verify: Verify,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, String> {
    client_config_with_identity(verify, versions, None)
}

/// A client certificate chain and its private key (mTLS).
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Reads a client identity: every certificate of `cert` (PEM) and the key in `key` (PEM:
/// PKCS#8, PKCS#1 or SEC1).
pub fn load_identity(cert: &Path, key: &Path) -> Result<Identity, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read client certificate {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad client certificate in {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read client key {}: {e}", key.display()))?;
    Ok((certs, key))
}

/// [`client_config`] that also presents `identity` when the server asks for one.
pub fn client_config_with_identity(
    verify: Verify,
    versions: &[&'static SupportedProtocolVersion],
    identity: Option<Identity>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls configuration: {e}"))?;
    let builder = match verify {
        Verify::Full(roots) => builder.with_root_certificates(roots),
        Verify::Chain(roots) => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("tls roots: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { inner }))
        }
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider })),
    };
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("client certificate: {e}"))?,
    };
    Ok(Arc::new(config))
}

/// Every certificate of a PEM file as a root store; an empty or unreadable file is an error.
pub fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read root certificates {}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in iter {
        let cert = cert.map_err(|e| format!("bad root certificate in {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("bad root certificate in {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(roots)
}

/// The system CA bundles, in the order they are looked for (`sslrootcert = "system"`, as
/// OpenSSL's default paths on Debian/Ubuntu/Alpine, RHEL/Fedora, SUSE, then the common link).
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// The system's trust store: the first bundle of [`SYSTEM_BUNDLES`] that holds a certificate,
/// else the built-in public roots. Also says which file was used (`None`: the built-in ones).
pub fn system_roots() -> (RootCertStore, Option<&'static str>) {
    system_roots_from(SYSTEM_BUNDLES)
}

/// [`system_roots`] over `paths`.
pub fn system_roots_from<'p>(paths: &[&'p str]) -> (RootCertStore, Option<&'p str>) {
    for &path in paths {
        // A bundle may hold a certificate rustls refuses (an old one): the others are kept.
        let Ok(iter) = CertificateDer::pem_file_iter(path) else {
            continue;
        };
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(iter.flatten());
        if !roots.is_empty() {
            return (roots, Some(path));
        }
    }
    (builtin_roots(), None)
}

/// The built-in public roots (webpki-roots).
pub fn builtin_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The TLS server name for a host: an IP address literal or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string()).map_err(|e| format!("bad tls server name {host:?}: {e}"))
}

/// `verify-ca`: the WebPKI verifier with only the host-name mismatch forgiven. rustls checks
/// the name after the chain, so a name error means the chain itself was good.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
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

/// `require`: any certificate, but the handshake signature must match it.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS session over a non-blocking socket `S`.
///
/// Invariant: `sock` is in non-blocking mode; every `WouldBlock` becomes a [`wait_io`].
pub struct TlsStream<S> {
    conn: ClientConnection,
    sock: S,
}

impl<S: Read + Write + AsFd> TlsStream<S> {
    /// Runs the handshake to completion (or error) before `deadline`.
    pub fn handshake(
        mut conn: ClientConnection,
        mut sock: S,
        deadline: Instant,
        signals: Option<&Signals>,
    ) -> Result<TlsStream<S>, IoError> {
        while conn.is_handshaking() {
            if conn.wants_write() {
                flush(&mut conn, &mut sock, deadline, signals)?;
                continue;
            }
            read_records(&mut conn, &mut sock, deadline, signals)?;
        }
        // TLS 1.3 may leave a Finished or ticket ack queued.
        flush(&mut conn, &mut sock, deadline, signals)?;
        Ok(TlsStream { conn, sock })
    }

    /// The rustls connection (peer certificates, negotiated version …).
    pub fn conn(&self) -> &ClientConnection {
        &self.conn
    }

    /// The socket underneath.
    pub fn sock(&self) -> &S {
        &self.sock
    }

    /// Encrypts and sends all of `data`.
    pub fn write_all(
        &mut self,
        mut data: &[u8],
        deadline: Instant,
        signals: Option<&Signals>,
    ) -> Result<(), IoError> {
        while !data.is_empty() {
            let n = self.conn.writer().write(data)?;
            data = &data[n..];
            flush(&mut self.conn, &mut self.sock, deadline, signals)?;
        }
        flush(&mut self.conn, &mut self.sock, deadline, signals)
    }

    /// Reads some plaintext into `buf` (at least one byte); `Closed` at the end of the stream.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        signals: Option<&Signals>,
    ) -> Result<usize, IoError> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) => return Err(IoError::Closed),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(IoError::Closed);
                }
                Err(e) => return Err(IoError::Io(e)),
            }
            read_records(&mut self.conn, &mut self.sock, deadline, signals)?;
            // Key updates and alerts may need an answer.
            if self.conn.wants_write() {
                flush(&mut self.conn, &mut self.sock, deadline, signals)?;
            }
        }
    }

    /// Whether an idle connection has something to read: application data nobody asked for,
    /// or the peer's close. Such a connection must not carry another request. TLS records
    /// without data (a session ticket) are processed and do not count. Never waits.
    pub fn idle_input(&mut self) -> bool {
        loop {
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return true,
                Ok(_) => {
                    if self.conn.process_new_packets().is_err() {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        let mut byte = [0u8; 1];
        !matches!(self.conn.reader().read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends close_notify without waiting (best effort) and returns the socket.
    pub fn close(mut self) -> S {
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock).is_err() {
                break;
            }
        }
        self.sock
    }
}

/// Writes every pending TLS record.
fn flush<S: Write + AsFd>(
    conn: &mut ClientConnection,
    sock: &mut S,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<(), IoError> {
    while conn.wants_write() {
        match conn.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_io(sock.as_fd(), PollFlags::OUT, deadline, signals)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IoError::Io(e)),
        }
    }
    Ok(())
}

/// Reads at least one chunk of TLS records from the socket and processes them.
fn read_records<S: Read + Write + AsFd>(
    conn: &mut ClientConnection,
    sock: &mut S,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<(), IoError> {
    loop {
        match conn.read_tls(sock) {
            Ok(0) => return Err(IoError::Closed),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_io(sock.as_fd(), PollFlags::IN, deadline, signals)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IoError::Io(e)),
        }
    }
    if let Err(e) = conn.process_new_packets() {
        // Best effort: tell the peer why (the alert rustls queued).
        let _ = conn.write_tls(sock);
        return Err(IoError::Tls(e));
    }
    Ok(())
}

#[cfg(test)]
mod system_roots_tests {
    use super::*;

    #[test]
    fn the_first_bundle_with_a_certificate_is_used_else_the_builtin_roots() {
        let dir = std::env::temp_dir().join(format!("pgac-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_string()]).unwrap();
        let bundle = dir.join("bundle.pem");
        std::fs::write(&bundle, ca.cert.pem()).unwrap();
        let (missing, empty, bundle) = (
            dir.join("missing.pem"),
            empty.to_str().unwrap().to_string(),
            bundle.to_str().unwrap().to_string(),
        );
        let missing = missing.to_str().unwrap();
        let (roots, used) = system_roots_from(&[missing, &empty, &bundle]);
        assert_eq!(used, Some(bundle.as_str()));
        assert_eq!(roots.len(), 1);
        let (roots, used) = system_roots_from(&[missing, &empty]);
        assert_eq!(used, None);
        assert_eq!(roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
