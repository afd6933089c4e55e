//! coturn (Debian's `turnserver`) started by a test on loopback with a shared secret, as
//! duikou's TURN credentials expect (`use-auth-secret`). `tests/run` installs the package.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running coturn.
pub struct Coturn {
    child: Child,
    addr: SocketAddr,
    /// Holds the log.
    pub dir: TempDir,
}

impl Coturn {
    /// Starts coturn on a free loopback port with `secret` as its `static-auth-secret`.
    pub fn start(secret: &str) -> Self {
        let binary = Path::new("/usr/bin/turnserver");
        assert!(
            binary.exists(),
            "coturn is missing: run tests/run, which installs the Debian package"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("turnserver.log");
        let child = Command::new(binary)
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args(["--min-port=49152", "--max-port=65535"])
            .args(["--use-auth-secret", "--realm=duikou.test", "--fingerprint"])
            .arg(format!("--static-auth-secret={secret}"))
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
            ])
            .args(["--simple-log", "--no-stdout-log"])
            .arg(format!("--log-file={}", log.display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("turnserver.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // coturn listens on TCP and UDP on the same port; TCP shows it is up.
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "coturn did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, addr, dir }
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (a test may stop and continue it, as a link that dies and returns).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".log"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
