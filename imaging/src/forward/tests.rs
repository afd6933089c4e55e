//! Forwarding's tests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use tokio::sync::mpsc;

use super::store::{Fragments, write_all_vectored};
use super::*;

/// A queue with nothing due; it keeps the outcomes.
#[derive(Default)]
struct Outcomes(std::sync::Mutex<Vec<(i64, Attempt)>>);

impl Queue for Outcomes {
    async fn claim(&self, _limit: i64, _lease: Duration) -> Result<Vec<Job>, String> {
        Ok(Vec::new())
    }

    async fn record(&self, outcomes: &[(Job, Attempt, Duration)]) -> Result<(), String> {
        let mut kept = crate::lock(&self.0);
        kept.extend(outcomes.iter().map(|(job, a, _)| (job.id, a.clone())));
        Ok(())
    }
}

impl Outcomes {
    fn of(&self, id: i64) -> Option<Attempt> {
        let kept = crate::lock(&self.0);
        kept.iter().find(|(i, _)| *i == id).map(|(_, a)| a.clone())
    }
}

/// DCMTK's `storescp` as `ae_title`, storing into `dir`; killed on drop.
struct Storescp(std::process::Child);

impl Storescp {
    fn start(ae_title: &str, dir: &Path) -> (Self, u16) {
        Self::start_with(ae_title, dir, &[])
    }

    /// Started with further `options` (`--refuse`, …).
    fn start_with(ae_title: &str, dir: &Path, options: &[&str]) -> (Self, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = std::process::Command::new("storescp")
            .args(options)
            .args(["-aet", ae_title, "-od"])
            .arg(dir)
            .arg(port.to_string())
            .env("TCP_NODELAY", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("DCMTK's storescp (tests/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "storescp listens");
            std::thread::sleep(Duration::from_millis(10));
        }
        (Self(child), port)
    }
}

impl Drop for Storescp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn job(id: i64, dir: &Path, target: &Target) -> Job {
    let sop = format!("2.25.{}", 1000 + id);
    let path = dir.join(format!("{id}.dcm"));
    let bytes = crate::testing::ct(&sop, 100, 100);
    std::fs::write(&path, &bytes).unwrap();
    Job {
        id,
        attempts: 0,
        stored: Stored {
            path,
            offset: 0,
            length: bytes.len() as u64,
        },
        sop_class_uid: crate::testing::CT.into(),
        sop_instance_uid: sop,
        transfer_syntax: "1.2.840.10008.1.2.1".into(),
        target: target.clone(),
    }
}

async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A directory for the jobs' files, and a DCMTK `storescp` as PACS storing into the
/// other directory, with its target.
fn pacs() -> (tempfile::TempDir, tempfile::TempDir, Storescp, Target) {
    let stored = tempfile::tempdir().unwrap();
    let received = tempfile::tempdir().unwrap();
    let (scp, port) = Storescp::start("PACS", received.path());
    let target = Target {
        ae_title: "PACS".parse().unwrap(),
        host: "127.0.0.1".into(),
        port,
        tls: false,
    };
    (stored, received, scp, target)
}

/// A forward worker with `associations` lanes per destination taking `batch` jobs,
/// retrying after `retry_base`; its outcomes, where jobs go to it, and its task.
fn worker(
    associations: usize,
    batch: i64,
    retry_base: Duration,
) -> (
    Arc<Outcomes>,
    mpsc::Sender<Job>,
    tokio::task::JoinHandle<()>,
) {
    let config = Arc::new(ForwardConfig {
        calling_ae_title: "DUIKOU".parse().unwrap(),
        associations,
        batch,
        lease: Duration::from_secs(60),
        retry_base,
        retry_max: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        max_pdu_length: 65536,
        tls: None,
        outbound: crate::outbound::Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..Default::default()
        },
    });
    let queue = Arc::new(Outcomes::default());
    let (handoff, handed) = mpsc::channel(64);
    let worker = tokio::spawn(run(
        queue.clone(),
        config,
        Arc::new(tokio::sync::Notify::new()),
        handed,
    ));
    (queue, handoff, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_hangs_holds_up_its_own_jobs_only() {
    let (stored, received, _scp, working) = pacs();
    // Takes connections and never answers an association request.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging = Target {
        ae_title: "SILENT".parse().unwrap(),
        host: "127.0.0.1".into(),
        port: silent.local_addr().unwrap().port(),
        tls: false,
    };
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(8).collect();
        std::thread::sleep(Duration::from_secs(120));
        drop(held);
    });
    let (queue, handoff, worker) = worker(1, 2, Duration::from_secs(1));
    // More jobs for the silent destination than its lanes hold, then three for the
    // working one: those arrive although the first still wait.
    for id in 0..8 {
        handoff
            .send(job(id, stored.path(), &hanging))
            .await
            .unwrap();
    }
    for id in 100..103 {
        handoff
            .send(job(id, stored.path(), &working))
            .await
            .unwrap();
    }
    let count = || std::fs::read_dir(received.path()).unwrap().count();
    until("the working destination gets its jobs", || {
        (100..103).all(|id| queue.of(id) == Some(Attempt::Delivered))
    })
    .await;
    assert_eq!(count(), 3);
    assert!((0..8).all(|id| queue.of(id).is_none()), "still associating");

    worker.abort();
}

/// A destination gets as many associations at once as configured: each lane opens its
/// own, and no more than the lanes. (Destinations that never answer hold each
/// connection open, so that the connections counted are the lanes'.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_destination_gets_the_configured_number_of_associations_at_once() {
    let stored = tempfile::tempdir().unwrap();
    for associations in [1, 3] {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = Target {
            ae_title: "SILENT".parse().unwrap(),
            host: "127.0.0.1".into(),
            port: silent.local_addr().unwrap().port(),
            tls: false,
        };
        let connected = Arc::new(AtomicUsize::new(0));
        let counting = connected.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in silent.incoming() {
                held.push(c);
                counting.fetch_add(1, Ordering::SeqCst);
            }
        });
        let (_queue, handoff, worker) = worker(associations, 2, Duration::from_secs(60));
        for id in 0..10 {
            handoff.send(job(id, stored.path(), &target)).await.unwrap();
        }
        until("every lane connects", || {
            connected.load(Ordering::SeqCst) >= associations
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(connected.load(Ordering::SeqCst), associations);
        worker.abort();
    }
}

/// DCMTK's `storescp` takes one association at a time: a second lane's association
/// waits until the first lane's ends. No job may wait with it: while one lane is
/// delivering, every job goes through that lane, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_taking_one_association_at_a_time_keeps_no_job_behind_it() {
    let (stored, _received, _scp, target) = pacs();
    let (queue, handoff, worker) = worker(2, 4, Duration::from_secs(60));
    let delivered = |id: i64| queue.of(id) == Some(Attempt::Delivered);
    // Two jobs a moment apart: the second lane asks to associate while the first
    // delivers; the first lane's association ends after a quiet [`IDLE`], and the
    // second lane's is accepted.
    handoff.send(job(1, stored.path(), &target)).await.unwrap();
    until("the first job", || delivered(1)).await;
    handoff.send(job(2, stored.path(), &target)).await.unwrap();
    until("the second job", || delivered(2)).await;
    tokio::time::sleep(IDLE + IDLE / 4).await;
    // Jobs keep coming for longer than IDLE: whichever lane holds the association
    // delivers them all, and none is held by the lane waiting to associate.
    for id in 10..40 {
        handoff.send(job(id, stored.path(), &target)).await.unwrap();
        tokio::time::sleep(IDLE / 20).await;
    }
    until("the last job", || delivered(39)).await;
    let behind: Vec<i64> = (10..39).filter(|&id| !delivered(id)).collect();
    assert!(behind.is_empty(), "jobs still waiting: {behind:?}");
    worker.abort();
}

#[test]
fn framed_fragments_are_the_pdus_dicom_ul_would_write() {
    let fragments = Fragments {
        context: 3,
        max_pdv: 10,
    };
    let data: Vec<u8> = (0..35_u8).collect();
    for (length, last) in [(0, true), (1, true), (10, true), (11, false), (35, true)] {
        let mut headers = Vec::new();
        let ours: Vec<u8> = fragments
            .frame(&mut headers, &data[..length], last)
            .iter()
            .flat_map(|slice| slice.to_vec())
            .collect();
        // dicom-ul's encoding of the same fragments, PDU by PDU.
        let mut theirs = Vec::new();
        let chunks: Vec<&[u8]> = if length == 0 {
            vec![&[][..]]
        } else {
            data[..length].chunks(10).collect()
        };
        for (n, chunk) in chunks.iter().enumerate() {
            let pdu = Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: 3,
                    value_type: PDataValueType::Data,
                    is_last: last && n + 1 == chunks.len(),
                    data: chunk.to_vec(),
                }],
            };
            dicom_ul::write_pdu(&mut theirs, &pdu).unwrap();
        }
        assert_eq!(ours, theirs, "{length} bytes, last: {last}");
    }
}

#[tokio::test]
async fn vectored_writes_go_out_whole_however_the_stream_takes_them() {
    let fragments = Fragments {
        context: 1,
        max_pdv: 7,
    };
    let data: Vec<u8> = (0..=255_u8).cycle().take(5000).collect();
    let mut headers = Vec::new();
    let expected: Vec<u8> = fragments
        .frame(&mut headers, &data, true)
        .iter()
        .flat_map(|slice| slice.to_vec())
        .collect();
    // A pipe whose far end reads slowly takes the slices a few bytes at a time.
    let (mut near, mut far) = tokio::io::duplex(13);
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut far, &mut got)
            .await
            .unwrap();
        got
    });
    let mut slices = fragments.frame(&mut headers, &data, true);
    write_all_vectored(&mut near, &mut slices).await.unwrap();
    drop(near);
    assert_eq!(reading.await.unwrap(), expected);
}

#[test]
fn retries_back_off_exponentially_up_to_the_limit() {
    let config = ForwardConfig {
        calling_ae_title: "DUIKOU".parse().unwrap(),
        associations: 2,
        batch: 10,
        lease: Duration::from_secs(30),
        retry_base: Duration::from_secs(2),
        retry_max: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        max_pdu_length: 65536,
        tls: None,
        outbound: crate::outbound::Policy::default(),
    };
    let delays: Vec<u64> = (0..7).map(|a| backoff(&config, a).as_secs()).collect();
    assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
}

// ---- C-ECHO -----------------------------------------------------------------------

/// What an echo needs of forwarding's configuration: loopback allowed, `timeout`.
fn echo_config(timeout: Duration) -> ForwardConfig {
    ForwardConfig {
        calling_ae_title: "DUIKOU".parse().unwrap(),
        associations: 1,
        batch: 1,
        lease: Duration::from_secs(30),
        retry_base: Duration::from_secs(1),
        retry_max: Duration::from_secs(60),
        timeout,
        max_pdu_length: 65536,
        tls: None,
        outbound: crate::outbound::Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..Default::default()
        },
    }
}

fn on_loopback(ae_title: &str, port: u16) -> Target {
    Target {
        ae_title: ae_title.parse().unwrap(),
        host: "127.0.0.1".into(),
        port,
        tls: false,
    }
}

#[tokio::test]
async fn an_echo_to_storescp_succeeds_and_says_how_long_it_took() {
    let (_stored, _received, _scp, target) = pacs();
    let started = Instant::now();
    let echo = echo(&target, &echo_config(Duration::from_secs(60))).await;
    assert_eq!(echo.outcome, EchoOutcome::Success, "{echo:?}");
    assert_eq!(echo.status, Some(0));
    assert_eq!(echo.error, None);
    assert!(echo.round_trip <= started.elapsed());
}

#[tokio::test]
async fn an_echo_to_a_closed_port_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let echo = echo(
        &on_loopback("PACS", port),
        &echo_config(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(echo.outcome, EchoOutcome::Unreachable, "{echo:?}");
    assert!(echo.error.unwrap().contains(&format!("127.0.0.1:{port}")));
}

#[tokio::test]
async fn an_echo_to_a_storescp_that_refuses_associations_is_refused() {
    let received = tempfile::tempdir().unwrap();
    let (_scp, port) = Storescp::start_with("PACS", received.path(), &["--refuse"]);
    let echo = echo(
        &on_loopback("PACS", port),
        &echo_config(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(echo.outcome, EchoOutcome::Refused, "{echo:?}");
    assert_eq!(echo.rejection, Some(Rejection::Other));
}

/// A peer (dicom-ul's own SCP) that answers to `PACS` only and knows only the calling
/// AE title `KNOWN`; it takes one association.
fn particular_peer() -> u16 {
    struct KnownCallers;
    impl dicom_ul::association::server::AccessControl for KnownCallers {
        fn check_access(
            &self,
            this: &str,
            calling: &str,
            called: &str,
            _user: Option<&dicom_ul::pdu::UserIdentity>,
        ) -> Result<(), dicom_ul::pdu::AssociationRJServiceUserReason> {
            use dicom_ul::pdu::AssociationRJServiceUserReason as Reason;
            if called != this {
                Err(Reason::CalledAETitleNotRecognized)
            } else if calling != "KNOWN" {
                Err(Reason::CallingAETitleNotRecognized)
            } else {
                Ok(())
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let options = dicom_ul::association::server::ServerAssociationOptions::new()
            .ae_access_control(KnownCallers)
            .ae_title("PACS")
            .with_abstract_syntax(dicom_dictionary_std::uids::VERIFICATION);
        if let Some(Ok(socket)) = listener.incoming().next() {
            let _ = options.establish(socket);
        }
    });
    port
}

#[tokio::test]
async fn an_echo_says_which_ae_title_the_destination_does_not_know() {
    let config = echo_config(Duration::from_secs(5));
    let port = particular_peer();
    let echo_wrong_name = echo(&on_loopback("NOT_PACS", port), &config).await;
    assert_eq!(echo_wrong_name.outcome, EchoOutcome::Refused);
    assert_eq!(echo_wrong_name.rejection, Some(Rejection::CalledAeTitle));
    let port = particular_peer();
    let echo_unknown_caller = echo(&on_loopback("PACS", port), &config).await;
    assert_eq!(echo_unknown_caller.outcome, EchoOutcome::Refused);
    assert_eq!(
        echo_unknown_caller.rejection,
        Some(Rejection::CallingAeTitle)
    );
}

#[tokio::test]
async fn an_echo_to_a_peer_that_never_answers_times_out_within_the_bound() {
    // Takes the connection and never answers the association request.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held = silent.incoming().next();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let started = Instant::now();
    let echo = echo(
        &on_loopback("PACS", port),
        &echo_config(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(echo.outcome, EchoOutcome::TimedOut, "{echo:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_echo_to_an_address_the_outbound_policy_refuses_is_not_made() {
    let (_stored, _received, _scp, target) = pacs();
    let mut config = echo_config(Duration::from_secs(5));
    config.outbound = crate::outbound::Policy::default();
    let echo = echo(&target, &config).await;
    assert_eq!(echo.outcome, EchoOutcome::NotAllowed, "{echo:?}");
}

#[test]
fn an_error_and_the_sentence_shown_for_it_are_of_the_same_kind() {
    for kind in ErrorKind::ALL {
        assert_eq!(ErrorKind::of(kind.sentence()), kind);
        assert_eq!(error_class(kind.sentence()), kind.sentence());
    }
    for (error, kind) in [
        (
            "not connecting to 127.0.0.1:104: 127.0.0.1 is an address outbound connections may not reach",
            ErrorKind::NotAllowed,
        ),
        (
            "cannot associate with PACS at 10.0.0.5:104: association rejected",
            ErrorKind::Unreachable,
        ),
        ("PACS answered status 0xa700", ErrorKind::InstanceRefused),
        (
            "江门市中心医院 has no DICOM destination",
            ErrorKind::NoDestination,
        ),
        (
            "the association broke: timed out writing",
            ErrorKind::Broken,
        ),
    ] {
        assert_eq!(ErrorKind::of(error), kind, "{error}");
    }
    let codes: std::collections::BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
}
