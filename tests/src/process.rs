//! The real `duikou` binary as a separate process, for tests of what only a process
//! shows: first and second start, SIGTERM, and several gateway processes sharing one
//! PostgreSQL database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{TestDb, duikou_binary};

/// A running `duikou serve` and what it printed.
pub struct Served {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:port` (or `https://…`).
    pub base: String,
    /// Lines printed on stdout.
    pub stdout: mpsc::Receiver<String>,
    /// Where its DICOM storage SCP listens.
    pub dicom: Option<std::net::SocketAddr>,
}

impl Served {
    /// Starts `duikou serve` for `db` on an ephemeral port with `extra` arguments and
    /// `env` (`DUIKOU_*` settings), and waits until it listens. Its spool is the tests'
    /// ([`TestDb::config`]): small segments, none prepared unless `env` asks; and, like
    /// it, loopback allowed to outbound connections.
    pub fn start(db: &TestDb, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(duikou_binary())
            .arg("serve")
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DUIKOU_DATA_DIR", db.dir.path())
            .env("DUIKOU_DATABASE_URL", &db.url)
            .env("DUIKOU_HTTP_LISTEN", "127.0.0.1:0")
            .env("DUIKOU_IMAGING_LISTEN", "127.0.0.1:0")
            .env("DUIKOU_SIGNALING_MEDIA_LISTEN", "127.0.0.1:0")
            // The tests' spool (see `TestDb::config`), unless `env` says otherwise.
            .env(
                "DUIKOU_IMAGING_SPOOL_SEGMENT_BYTES",
                crate::SPOOL_SEGMENT_BYTES.to_string(),
            )
            .env("DUIKOU_IMAGING_SPOOL_PREPARED_BYTES", "0")
            // The tests' destinations are on this machine (see `TestDb::config`).
            .env("DUIKOU_OUTBOUND_ALLOW", "[\"127.0.0.0/8\", \"::1/128\"]")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("duikou starts");
        let (out_tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let (addr_tx, addr_rx) = mpsc::channel();
        let (dicom_tx, dicom_rx) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            let addr_of = |line: &str| {
                line.split("addr=")
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next())
                    .unwrap_or_default()
                    .to_owned()
            };
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("duikou: {line}");
                if line.contains("DICOM listening") {
                    let _ = dicom_tx.send(addr_of(&line));
                } else if line.contains("listening (http") {
                    let _ = addr_tx.send(addr_of(&line));
                }
            }
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("duikou listens");
        let dicom = dicom_rx.try_recv().ok().and_then(|a| a.parse().ok());
        let scheme = if extra.contains(&"--self-signed") {
            "https"
        } else {
            "http"
        };
        Self {
            child,
            base: format!("{scheme}://{addr}"),
            stdout,
            dicom,
        }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        kill(Pid::from_raw(pid), Signal::SIGTERM).expect("the signal is sent");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("duikou did not stop within 30 s of SIGTERM");
    }
}

impl Served {
    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // A test that fails half-way leaves no gateway behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
