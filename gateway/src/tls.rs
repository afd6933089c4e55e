//! HTTPS through rustls: a configured certificate and key, or a self-signed certificate
//! generated once into the data directory for local use (`--self-signed`).

use std::path::PathBuf;

use anyhow::Context as _;
use axum_server::tls_rustls::RustlsConfig;

use crate::config::Config;

/// Installs ring as rustls' process-wide crypto provider; later calls are no-ops.
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls configuration the HTTP configuration asks for, if any.
pub async fn server_config(config: &Config) -> anyhow::Result<Option<RustlsConfig>> {
    install_crypto_provider();
    let http = &config.http;
    let (cert, key) = match (&http.tls_cert, &http.tls_key, http.self_signed) {
        (Some(cert), Some(key), _) => (cert.clone(), key.clone()),
        (None, None, true) => self_signed(config)?,
        (None, None, false) => return Ok(None),
        _ => anyhow::bail!("http.tls_cert and http.tls_key go together: set both or neither"),
    };
    let tls = RustlsConfig::from_pem_file(&cert, &key)
        .await
        .with_context(|| {
            format!(
                "loading the TLS certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Some(tls))
}

/// Generates a certificate for localhost and 127.0.0.1 on first use and keeps it, so that
/// a browser exception made once stays valid.
fn self_signed(config: &Config) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = config.data.dir.join("tls");
    let cert = dir.join("self-signed.crt");
    let key = dir.join("self-signed.key");
    if !cert.exists() || !key.exists() {
        std::fs::create_dir_all(&dir)?;
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let generated = rcgen::generate_simple_self_signed(names)?;
        std::fs::write(&cert, generated.cert.pem())?;
        write_private(&key, generated.key_pair.serialize_pem().as_bytes())?;
        tracing::info!(cert = %cert.display(), "generated a self-signed certificate");
    }
    Ok((cert, key))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
