//! The storage SCP's tests.

use dicom_dictionary_std::uids;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};

use super::exchange::fragments;
use super::reading::{EARLY_AT, early};
use super::*;
use crate::dimse::status;
use crate::lock;
use crate::spool::{Incoming, Sender, Stored};
use crate::testing::CT;

const SOP: &str = "2.25.4242";

/// A CT with a sequence before 200 KB of pixel data, as a Part 10 file.
fn large_ct() -> Vec<u8> {
    crate::testing::ct(SOP, 100, 1000)
}

#[test]
fn p_data_fragments_are_read_in_place_as_dicom_ul_writes_them() {
    let pdu = Pdu::PData {
        data: vec![
            PDataValue {
                presentation_context_id: 1,
                value_type: PDataValueType::Command,
                is_last: true,
                data: vec![1, 2, 3],
            },
            PDataValue {
                presentation_context_id: 3,
                value_type: PDataValueType::Data,
                is_last: false,
                data: vec![],
            },
            PDataValue {
                presentation_context_id: 3,
                value_type: PDataValueType::Data,
                is_last: true,
                data: vec![9; 1000],
            },
        ],
    };
    let mut bytes = Vec::new();
    dicom_ul::write_pdu(&mut bytes, &pdu).unwrap();
    let Pdu::PData { data } = pdu else {
        unreachable!()
    };
    let read = fragments(&bytes).expect("well formed");
    assert_eq!(read.len(), data.len());
    for (ours, theirs) in read.iter().zip(&data) {
        assert_eq!(ours.presentation_context_id, theirs.presentation_context_id);
        assert_eq!(ours.value_type, theirs.value_type);
        assert_eq!(ours.is_last, theirs.is_last);
        assert_eq!(ours.data, &theirs.data[..]);
    }
    // Items that overrun the PDU, are too short for their header, or leave bytes over.
    let mut overrun = bytes.clone();
    overrun[6..10].copy_from_slice(&5000_u32.to_be_bytes());
    assert!(fragments(&overrun).is_none());
    let mut short = bytes.clone();
    short[6..10].copy_from_slice(&1_u32.to_be_bytes());
    assert!(fragments(&short).is_none());
    let mut over = bytes.clone();
    over.extend_from_slice(&[0, 0]);
    assert!(fragments(&over).is_none());
    assert!(fragments(&bytes[..4]).is_none());
}

#[test]
fn attributes_read_early_are_those_read_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ct.dcm");
    let bytes = large_ct();
    std::fs::write(&path, &bytes).unwrap();
    let whole = Stored {
        path,
        offset: 0,
        length: bytes.len() as u64,
    };
    let ts = uids::EXPLICIT_VR_LITTLE_ENDIAN;
    let at_end = inspect(&whole, CT, SOP, ts).expect("a sound instance");
    assert_eq!(at_end.patient_name, "Test^Patient");
    // The first 64 KiB hold everything before the pixel data.
    let so_far = Stored {
        length: EARLY_AT,
        ..whole.clone()
    };
    assert_eq!(early(&so_far, CT, SOP, ts), Some(at_end));
    // Not yet at the pixel data, another instance, or deflated: read at the end.
    let little = Stored {
        length: 300,
        ..whole.clone()
    };
    assert_eq!(early(&little, CT, SOP, ts), None);
    assert_eq!(early(&so_far, CT, "2.25.1", ts), None);
    let deflated = uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN;
    assert_eq!(early(&so_far, CT, SOP, deflated), None);
}

/// An index in memory: what it names, and what was taken out of it.
#[derive(Default)]
struct Index {
    named: std::sync::Mutex<Vec<String>>,
    taken_out: std::sync::Mutex<Vec<String>>,
}

impl Archive for Index {
    type Route = ();
    async fn callers(&self) -> Result<HashMap<AeTitle, Caller>, String> {
        Ok(HashMap::new())
    }
    async fn route(&self, _institution_id: i64) {}
    async fn indexed_ends(&self) -> Result<HashMap<String, u64>, String> {
        Ok(HashMap::new())
    }
    async fn last_indexed(&self) -> Result<Vec<LastIndexed>, String> {
        Ok(Vec::new())
    }
    async fn index(
        &self,
        record: impl Future<Output = Option<InstanceRecord>> + Send,
        _route: &(),
        sound: impl Future<Output = bool> + Send,
    ) -> Result<Option<Indexed>, String> {
        let Some(record) = record.await else {
            return Ok(None);
        };
        if lock(&self.named).contains(&record.sop_instance_uid) {
            return Ok(Some(Indexed::Duplicate));
        }
        if !sound.await {
            return Err("not sound".into());
        }
        lock(&self.named).push(record.sop_instance_uid);
        Ok(Some(Indexed::New))
    }
    async fn unindex(&self, sop_instance_uid: &str) -> Result<(), String> {
        lock(&self.named).retain(|named| named != sop_instance_uid);
        lock(&self.taken_out).push(sop_instance_uid.to_owned());
        Ok(())
    }
}

/// An empty spool in `dir`, open for writing.
/// A disk whose next syncs fail, as many as it is told.
#[derive(Debug, Default)]
struct Failing(std::sync::atomic::AtomicUsize);

impl Failing {
    fn fail_next(&self, n: usize) {
        self.0.store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

impl crate::spool::Disk for Failing {
    fn sync_data(&self, file: &std::fs::File) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        if self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(std::io::Error::other("a failing disk"));
        }
        file.sync_data()
    }
}

/// A spool in `dir`, on a disk the test can make fail.
fn spool_in(dir: &tempfile::TempDir) -> (Spool, Arc<Failing>) {
    let disk = Arc::new(Failing::default());
    let spool = Spool::open_on(dir.path(), crate::spool::Layout::default(), disk.clone()).unwrap();
    spool.recover(&HashMap::new()).unwrap();
    (spool, disk)
}

/// An instance received from Taishan's CT, with `bytes` for its Part 10 file.
async fn received(spool: &Spool, bytes: &[u8]) -> Incoming {
    let sender = Sender {
        institution_id: 1,
        calling_ae: "TAISHAN_CT".into(),
    };
    let mut incoming = spool.begin(sender).await.unwrap();
    incoming.write(bytes).unwrap();
    incoming
}

/// What the index is given for the instance `uid`.
fn record(uid: &str) -> InstanceRecord {
    InstanceRecord {
        sop_instance_uid: uid.into(),
        ..InstanceRecord::default()
    }
}

#[tokio::test]
async fn an_instance_whose_sync_fails_is_taken_out_of_the_index_and_its_bytes_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, disk) = spool_in(&dir);
    let index = Index::default();
    let synced = received(&spool, b"the first instance").await;
    assert_eq!(
        keep(&index, &(), synced, record("2.25.1")).await,
        status::SUCCESS
    );

    // The disk fails: the index committed the second while its sync ran, and takes it
    // out again; the answer is a failure.
    disk.fail_next(1);
    let unsynced = received(&spool, b"the second instance").await;
    let bytes = unsynced.stored();
    assert_eq!(
        keep(&index, &(), unsynced, record("2.25.2")).await,
        status::OUT_OF_RESOURCES
    );
    assert_eq!(*lock(&index.named), ["2.25.1"]);
    assert_eq!(*lock(&index.taken_out), ["2.25.2"]);
    // A forward that took it meanwhile may still read it: no record goes over it.
    let next = received(&spool, b"the third instance").await;
    assert_ne!(next.stored().path, bytes.path);
    assert_eq!(bytes.read().unwrap(), b"the second instance");
}

#[tokio::test]
async fn a_second_copy_is_answered_once_the_first_is_kept_or_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, disk) = spool_in(&dir);
    let index = Index::default();
    // Two copies at once; the first's sync fails after the index has named it. The
    // second is not answered as a duplicate of it: it is kept itself.
    let first = received(&spool, b"first copy").await;
    let second = received(&spool, b"second copy").await;
    disk.fail_next(1);
    let (first, second) = tokio::join!(
        keep(&index, &(), first, record("2.25.7")),
        keep(&index, &(), second, record("2.25.7"))
    );
    assert_eq!(first, status::OUT_OF_RESOURCES);
    assert_eq!(second, status::SUCCESS);
    assert_eq!(*lock(&index.named), ["2.25.7"]);
    assert_eq!(*lock(&index.taken_out), ["2.25.7"]);
    // Kept after all, a third copy is a duplicate, answered at once.
    let third = received(&spool, b"third copy").await;
    assert_eq!(
        keep(&index, &(), third, record("2.25.7")).await,
        status::SUCCESS
    );
    assert_eq!(*lock(&index.named), ["2.25.7"]);
    assert_eq!(spool.kept_now(), 0);
}
