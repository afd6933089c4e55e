//! A throwaway certificate authority for TLS tests: a server certificate for localhost and
//! 127.0.0.1, and a client certificate, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// PEM files of a test CA and the certificates it issued.
pub struct TestPki {
    /// The directory holding them.
    pub dir: tempfile::TempDir,
}

impl TestPki {
    /// Issues a CA, a server and a client certificate.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a directory");
        let write =
            |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("written");
        let ca_key = KeyPair::generate().expect("a key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "duikou test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("a CA certificate");
        write("ca.pem", &ca_cert.pem());
        for (name, names) in [
            (
                "server",
                vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ),
            ("client", vec!["taishan-ct.example".to_owned()]),
        ] {
            let key = KeyPair::generate().expect("a key");
            let mut params = CertificateParams::new(names).expect("parameters");
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params
                .signed_by(&key, &ca_cert, &ca_key)
                .expect("a certificate");
            write(&format!("{name}.pem"), &cert.pem());
            write(&format!("{name}.key"), &key.serialize_pem());
        }
        Self { dir }
    }

    /// A file of the PKI: `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// The path as a string for a command line.
pub fn arg(path: &Path) -> String {
    path.display().to_string()
}
