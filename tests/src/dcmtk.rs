//! DCMTK (Debian's `dcmtk` package) and the pydicom sample files (PyPI's `pydicom`), the
//! real DICOM peers and data of the imaging tests. `tests/run` installs both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs a DCMTK tool with `TCP_NODELAY=1` (without it every message waits for a delayed
/// ACK) and returns what it did.
pub fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .env("TCP_NODELAY", "1")
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs (tests/run installs DCMTK): {e}"))
}

/// `echoscu` from `calling` to `called` at `addr`.
pub fn echo(addr: SocketAddr, calling: &str, called: &str) -> Output {
    let port = addr.port().to_string();
    run(
        "echoscu",
        &[
            "-aet",
            calling,
            "-aec",
            called,
            &addr.ip().to_string(),
            &port,
        ],
    )
}

/// The `storescu` option that proposes `transfer_syntax` (with the uncompressed ones), so
/// that a file in it travels as it is.
pub fn propose(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        "1.2.840.10008.1.2.2" => "-xb",
        "1.2.840.10008.1.2.1.99" => "-xd",
        "1.2.840.10008.1.2.4.50" => "-xy",
        "1.2.840.10008.1.2.4.51" => "-xx",
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "-xs",
        "1.2.840.10008.1.2.4.80" => "-xt",
        "1.2.840.10008.1.2.4.81" => "-xu",
        "1.2.840.10008.1.2.4.90" => "-xv",
        "1.2.840.10008.1.2.4.91" => "-xw",
        "1.2.840.10008.1.2.5" => "-xr",
        _ => "-x=",
    }
}

/// `storescu` of `files` from `calling` to `called` at `addr`, proposing
/// `transfer_syntax` (see [`propose`]) and only the contexts the files need.
pub fn store(
    addr: SocketAddr,
    calling: &str,
    called: &str,
    transfer_syntax: &str,
    files: &[PathBuf],
) -> Output {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let mut args: Vec<String> = [
        "--required",
        propose(transfer_syntax),
        "-aet",
        calling,
        "-aec",
        called,
        &host,
        &port,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("storescu", &args)
}

/// The transfer syntax and SOP Instance UID of a DICOM file, read with pydicom.
pub fn describe(file: &std::path::Path) -> (String, String) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, pydicom; d = pydicom.dcmread(sys.argv[1], stop_before_pixels=True); print(d.file_meta.TransferSyntaxUID); print(d.SOPInstanceUID)",
        ])
        .arg(file)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    (
        lines.next().unwrap_or_default().trim().to_owned(),
        lines.next().unwrap_or_default().trim().to_owned(),
    )
}

/// Runs a Python `script` (which may import pydicom) with `args`; panics unless it
/// succeeds, and returns what it printed.
pub fn python<A: AsRef<std::ffi::OsStr>>(script: &str, args: &[A]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 with pydicom (tests/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `n` copies of CT_small.dcm with fresh SOP Instance UIDs (one series) into `dir`;
/// returns the files and their UIDs.
pub fn ct_images(dir: &std::path::Path, n: usize) -> (Vec<std::path::PathBuf>, Vec<String>) {
    ct_images_of_side(dir, n, 128)
}

/// [`ct_images`] of `side`×`side` pixels (CT_small's own are 128×128; larger ones get a
/// made-up 16-bit pattern): 512 makes instances of about half a megabyte, like a CT's.
pub fn ct_images_of_side(
    dir: &std::path::Path,
    n: usize,
    side: usize,
) -> (Vec<std::path::PathBuf>, Vec<String>) {
    let script = "import sys, pydicom, os\n\
        from pydicom.uid import generate_uid\n\
        src = os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files', 'CT_small.dcm')\n\
        out, n, side = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n\
        series = generate_uid()\n\
        for i in range(n):\n\
        \x20   ds = pydicom.dcmread(src)\n\
        \x20   ds.SOPInstanceUID = generate_uid()\n\
        \x20   ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID\n\
        \x20   ds.SeriesInstanceUID = series\n\
        \x20   ds.InstanceNumber = i + 1\n\
        \x20   if side != 128:\n\
        \x20       ds.Rows = ds.Columns = side\n\
        \x20       ds.PixelData = bytes((j * 7 + i) % 251 for j in range(side * side * 2))\n\
        \x20   ds.save_as(os.path.join(out, f'ct{i:04}.dcm'))\n\
        \x20   print(ds.SOPInstanceUID)\n";
    let out = python(
        script,
        &[
            dir.as_os_str(),
            n.to_string().as_ref(),
            side.to_string().as_ref(),
        ],
    );
    let uids: Vec<String> = out.lines().map(str::to_owned).collect();
    let files = (0..n).map(|i| dir.join(format!("ct{i:04}.dcm"))).collect();
    (files, uids)
}

/// The directory of pydicom's sample files.
pub fn pydicom_files() -> PathBuf {
    let out = python(
        "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        &[] as &[&str],
    );
    PathBuf::from(out.trim())
}

/// The data set of a DICOM file: what follows the preamble and the file meta group.
pub fn data_set(bytes: &[u8]) -> &[u8] {
    assert_eq!(&bytes[128..132], b"DICM", "a DICOM file");
    // (0002,0000) UL, explicit VR: tag 4, VR 2, length 2, value 4.
    let group = u32::from_le_bytes(bytes[140..144].try_into().expect("four bytes"));
    &bytes[144 + group as usize..]
}

/// A loopback port nobody listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// DCMTK's `storescp` in bit-preserving mode (`+B`): it writes every data set exactly as
/// it arrived, which makes it the reference for what a sender put on the wire.
pub struct Storescp {
    child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it writes.
    pub dir: tempfile::TempDir,
}

impl Storescp {
    /// Starts `storescp` answering to `ae_title` on a free loopback port.
    pub fn start(ae_title: &str) -> Self {
        Self::start_on(ae_title, free_port())
    }

    /// Starts `storescp` on `port`.
    pub fn start_on(ae_title: &str, port: u16) -> Self {
        Self::start_with(ae_title, port, &["+B", "+xa"])
    }

    /// Starts `storescp` accepting only the uncompressed transfer syntaxes (its default).
    pub fn start_uncompressed(ae_title: &str) -> Self {
        Self::start_with(ae_title, free_port(), &["+B"])
    }

    /// Starts `storescp` that refuses every association (A-ASSOCIATE-RJ, `--refuse`).
    pub fn start_refusing(ae_title: &str) -> Self {
        Self::start_with(ae_title, free_port(), &["--refuse"])
    }

    fn start_with(ae_title: &str, port: u16, options: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a directory");
        let child = Command::new("storescp")
            .args(options)
            .args(["-aet", ae_title, "-od"])
            .arg(dir.path())
            .arg(port.to_string())
            .env("TCP_NODELAY", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("storescp starts (tests/run installs DCMTK)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(std::time::Instant::now() < deadline, "storescp listens");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, addr, dir }
    }

    /// The file it wrote for `sop_instance_uid`, if any.
    pub fn received(&self, sop_instance_uid: &str) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(sop_instance_uid))
            })
    }
}

impl Drop for Storescp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
