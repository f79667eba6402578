//! TLS on an extra port (`--tls-port`), with rustls and its ring provider.
//!
//! [`acceptor`] reads the certificate chain, the private key and, if given,
//! the CA for client certificates once at start (there is no reload) and
//! builds the rustls server configuration every shard shares. [`serve`]
//! runs the handshake of one accepted socket, bounded by
//! [`HANDSHAKE_TIMEOUT`], then hands the TLS stream to [`crate::conn`]. A
//! failed handshake (plaintext on the TLS port, a bad client certificate, a
//! silent client) closes that connection only, with a debug log line.
//!
//! A TLS session's state lives in this process, not in the socket, so a TLS
//! connection cannot move to another shard by its descriptor: it stays on
//! the shard that accepted it and its commands for other shards' keys go
//! over the bus, as any connection's do.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use strand_engine::runtime::{self, TcpStream};

use crate::conn::ClientStream;
use crate::dispatch::Shard;

/// The longest a client may take to finish its handshake before it is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection over a glommio socket.
pub type TlsStream = futures_rustls::server::TlsStream<TcpStream>;

impl ClientStream for TlsStream {
    const MOVABLE: bool = false;

    fn socket(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// `tls-auth-clients`: whether clients must show a certificate signed by the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Client certificates are not asked for.
    No,
    /// Every client must show a valid certificate.
    Yes,
    /// A certificate is asked for; one shown must be valid, none is also fine.
    Optional,
}

impl ClientAuth {
    /// Parses Redis's spelling: no, yes or optional.
    pub fn parse(s: &str) -> Result<ClientAuth, String> {
        match s.to_ascii_lowercase().as_str() {
            "no" => Ok(ClientAuth::No),
            "yes" => Ok(ClientAuth::Yes),
            "optional" => Ok(ClientAuth::Optional),
            other => Err(format!("invalid tls-auth-clients '{other}': expected no, yes or optional")),
        }
    }

    /// Redis's spelling.
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::No => "no",
            ClientAuth::Yes => "yes",
            ClientAuth::Optional => "optional",
        }
    }
}

/// The TLS settings of the configuration (present only when `tls-port` is set).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to.
    pub ca_cert_file: Option<PathBuf>,
    /// Whether client certificates are required.
    pub auth_clients: ClientAuth,
}

/// Reads the PEM files and builds the acceptor every shard uses; errors name the file.
pub fn acceptor(settings: &TlsSettings) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = load_certs(&settings.cert_file, "tls-cert-file")?;
    let key = load_key(&settings.key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let builder = match (&settings.ca_cert_file, settings.auth_clients) {
        (Some(ca), auth) if auth != ClientAuth::No => builder.with_client_cert_verifier(client_verifier(ca, auth, provider)?),
        _ => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls-cert-file {} with tls-key-file {}: {e}", settings.cert_file.display(), settings.key_file.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Verifies client certificates against the CA file.
fn client_verifier(
    ca: &Path,
    auth: ClientAuth,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca, "tls-ca-cert-file")? {
        roots.add(cert).map_err(|e| format!("tls-ca-cert-file {}: {e}", ca.display()))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if auth == ClientAuth::Optional { builder.allow_unauthenticated() } else { builder };
    builder.build().map_err(|e| format!("tls-ca-cert-file {}: {e}", ca.display()))
}

/// Every certificate of a PEM file; at least one.
fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let read = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&read)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no PEM certificate (BEGIN CERTIFICATE) in it", path.display()));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let read = std::fs::read(path).map_err(|e| format!("tls-key-file {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&read).map_err(|e| format!("tls-key-file {}: no usable PEM private key in it: {e}", path.display()))
}

/// Runs the handshake of a socket accepted on the TLS port, then serves it
/// as any connection; a failed or timed-out handshake closes only this socket.
pub async fn serve(shard: Rc<Shard>, acceptor: TlsAcceptor, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    match handshake(&acceptor, stream).await {
        Ok(tls) => crate::conn::serve(shard, tls).await,
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed; connection closed");
            shard.state.borrow_mut().stats.tls_handshake_failures += 1;
            shard.shared.clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The handshake, bounded by [`HANDSHAKE_TIMEOUT`]; dropping the socket on failure closes it.
async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream) -> Result<TlsStream, String> {
    let accept = acceptor.accept(stream);
    let timer = runtime::sleep(HANDSHAKE_TIMEOUT);
    futures::pin_mut!(accept, timer);
    match futures::future::select(accept, timer).await {
        futures::future::Either::Left((Ok(tls), _)) => Ok(tls),
        futures::future::Either::Left((Err(e), _)) => Err(e.to_string()),
        futures::future::Either::Right(_) => Err(format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
    }
}
