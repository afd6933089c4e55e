//! The spool's tests.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt as _;

use super::incoming::DIRECT_FROM;
use super::segment::PAGE;
use super::*;

fn sender() -> Sender {
    Sender {
        institution_id: 7,
        calling_ae: "COUNTY_CT".into(),
    }
}

/// Writes `bytes` in pieces of several sizes: small ones are buffered, large ones go
/// straight to the segment when nothing is buffered, through the buffer otherwise.
async fn put(spool: &Spool, bytes: &[u8]) -> Incoming {
    let mut incoming = spool.begin(sender()).await.unwrap();
    let mut rest = bytes;
    for size in [16 * 1024, 40 * 1024, 7, 130 * 1024, 40 * 1024]
        .iter()
        .cycle()
    {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at((*size).min(rest.len()));
        incoming.write(piece).unwrap();
        rest = after;
        // Large pieces leave the segment's bytes ending on a page boundary.
        let buffered = incoming.segment().buffer.len() as u64;
        let end = incoming.start + HEADER + incoming.written;
        if piece.len() >= DIRECT_FROM || buffered >= WRITE_EVERY as u64 {
            assert!(buffered < PAGE && (end - buffered) % PAGE == 0);
        }
    }
    incoming.finish().await.unwrap();
    incoming
}

#[tokio::test]
async fn kept_records_read_back_and_are_found_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Layout::default()).unwrap();
    assert!(spool.recover(&HashMap::new()).unwrap().is_empty());
    let first: Vec<u8> = (0..700_000_u32).map(|i| (i % 251) as u8).collect();
    let second = b"a small one".to_vec();
    let a = put(&spool, &first).await;
    let stored_a = a.stored();
    let place_a = a.place();
    a.keep();
    let b = put(&spool, &second).await;
    let stored_b = b.stored();
    b.keep();
    assert_eq!(stored_a.read().unwrap(), first);
    // The reader of a record stops at its end, though the file goes on, and seeks
    // within it.
    let mut reader = stored_a.open().unwrap();
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert!(all == first);
    reader.seek(SeekFrom::Start(10)).unwrap();
    reader.seek_relative(5).unwrap();
    let mut some = [0_u8; 4];
    reader.read_exact(&mut some).unwrap();
    assert_eq!(some[..], first[15..19]);
    reader.seek(SeekFrom::End(-2)).unwrap();
    all.clear();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!(all, first[first.len() - 2..]);
    reader.seek(SeekFrom::Start(0)).unwrap();
    assert!(reader.seek(SeekFrom::Current(-1)).is_err());
    let mut read = Vec::new();
    stored_b.open().unwrap().read_to_end(&mut read).unwrap();
    assert_eq!(read, second);
    assert_eq!(
        Spool::records(dir.path()).unwrap(),
        vec![stored_a.clone(), stored_b.clone()]
    );

    // After a restart, what the index names is skipped and the rest found again.
    let again = Spool::open(dir.path(), Layout::default()).unwrap();
    let indexed = HashMap::from([(place_a.0.clone(), stored_a.offset + stored_a.length)]);
    let found = again.recover(&indexed).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].stored, stored_b);
    assert_eq!(found[0].sender, sender());
    assert_eq!(found[0].relative, place_a.0);
    // New records go after the last one.
    let c = put(&again, b"third").await;
    assert_eq!(
        c.stored().offset,
        stored_b.offset + stored_b.length + HEADER
    );
    c.keep();
    assert_eq!(Spool::records(dir.path()).unwrap().len(), 3);
}

#[tokio::test]
async fn discarded_unfinished_and_damaged_records_are_not_records() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Layout::default()).unwrap();
    spool.recover(&HashMap::new()).unwrap();
    // Finished, then discarded (a duplicate, or the index refused it): wiped.
    let a = put(&spool, &[1_u8; 200_000]).await;
    a.discard().await;
    assert!(Spool::records(dir.path()).unwrap().is_empty());
    // Cut off while arriving: nothing; the next record takes its place.
    let mut b = spool.begin(sender()).await.unwrap();
    b.write(&[2_u8; 300_000]).unwrap();
    let start_b = b.stored().offset;
    drop(b);
    let c = put(&spool, &[3_u8; 1000]).await;
    assert_eq!(c.stored().offset, start_b);
    c.keep();
    assert_eq!(Spool::records(dir.path()).unwrap().len(), 1);
    // A record whose bytes do not match its CRC (torn by a crash) ends the segment.
    let d = put(&spool, &[4_u8; 5000]).await;
    let stored_d = d.stored();
    d.keep();
    let e = put(&spool, &[5_u8; 5000]).await;
    e.keep();
    assert_eq!(Spool::records(dir.path()).unwrap().len(), 3);
    let file = File::options().write(true).open(&stored_d.path).unwrap();
    file.write_all_at(&[9_u8], stored_d.offset + 10).unwrap();
    assert_eq!(Spool::records(dir.path()).unwrap().len(), 1);
    // And a restart appends after the last good record.
    let again = Spool::open(dir.path(), Layout::default()).unwrap();
    assert!(again.recover(&HashMap::new()).unwrap().len() == 1);
    let f = put(&again, b"after").await;
    assert_eq!(f.stored().offset, stored_d.offset);
}

const MIB: u64 = 1024 * 1024;

/// Waits until `spool` has `bytes` prepared and prepares nothing more.
async fn until_prepared(spool: &Spool, bytes: u64) {
    // On the system's clock: the zeros are written to a real disk.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while spool.prepared() < bytes || spool.preparing() {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} prepared",
            spool.prepared()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lengths(root: &Path) -> Vec<u64> {
    segment_numbers(root)
        .unwrap()
        .into_iter()
        .map(|n| std::fs::metadata(root.join(segment_name(n))).unwrap().len())
        .collect()
}

/// On tokio's paused clock: the seconds of quiet pass at once, and a sleep of the test
/// ends only once every task has done all it could up to its end (the disk's work in
/// blocking tasks holds the clock until done), so that "nothing was prepared" is checked
/// after the preparer has had its chance.
#[tokio::test(start_paused = true)]
async fn segments_are_prepared_while_quiet_and_records_fill_them_without_growing_them() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout {
        segment_bytes: MIB,
        prepared_bytes: MIB + MIB / 2,
    };
    let spool = Spool::open(dir.path(), layout).unwrap();
    spool.recover(&HashMap::new()).unwrap();
    let preparer = tokio::spawn(spool.clone().prepare());
    until_prepared(&spool, MIB + MIB / 2).await;
    // A second preparer of the same spool does nothing.
    tokio::time::timeout(Duration::from_secs(1), spool.clone().prepare())
        .await
        .expect("returns at once");
    // Two segments, each with a MiB of zeros after its header.
    assert_eq!(lengths(dir.path()), vec![MIB + HEADER, MIB + HEADER]);
    let bytes = std::fs::read(dir.path().join(segment_name(1))).unwrap();
    assert!(bytes[HEADER as usize..].iter().all(|&b| b == 0));
    assert!(Spool::records(dir.path()).unwrap().is_empty());
    assert_eq!(spool.prepared(), 2 * MIB);

    // A record goes into a prepared segment, which does not grow.
    let first: Vec<u8> = (0..600_000_u32).map(|i| (i % 253) as u8).collect();
    let mut a = spool.begin(sender()).await.unwrap();
    a.write(&first).unwrap();
    // Nothing is prepared while an instance arrives, nor for a second after.
    tokio::time::sleep(QUIET + Duration::from_millis(300)).await;
    assert!(!spool.preparing());
    assert_eq!(lengths(dir.path()).len(), 2);
    a.finish().await.unwrap();
    let stored_a = a.stored();
    a.keep();
    assert_eq!(stored_a.read().unwrap(), first);
    assert_eq!(
        std::fs::metadata(&stored_a.path).unwrap().len(),
        MIB + HEADER
    );
    assert_eq!(Spool::records(dir.path()).unwrap(), vec![stored_a.clone()]);
    // Less than 1.5 MiB of room is left: once quiet, a third segment is prepared.
    assert!(spool.prepared() < MIB + MIB / 2);
    until_prepared(&spool, MIB + MIB / 2).await;
    assert_eq!(lengths(dir.path()), vec![MIB + HEADER; 3]);
    preparer.abort();
    let _ = preparer.await;
    assert!(!spool.preparing());

    // After a restart the room is known again from the files, and the next record
    // goes where the most is.
    let again = Spool::open(dir.path(), layout).unwrap();
    let found = again.recover(&HashMap::new()).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].stored, stored_a);
    assert_eq!(again.prepared(), spool.prepared());
    let b = put(&again, b"second").await;
    assert_ne!(b.stored().path, stored_a.path);
    b.keep();
    // A record that passes a segment's end grows it, and closes it.
    let big = vec![7_u8; (MIB + MIB / 2) as usize];
    let c = put(&again, &big).await;
    let stored_c = c.stored();
    c.keep();
    assert_eq!(stored_c.read().unwrap(), big);
    assert!(std::fs::metadata(&stored_c.path).unwrap().len() > MIB + HEADER);
    let d = put(&again, b"fourth").await;
    assert_ne!(d.stored().path, stored_c.path);
    d.keep();
    assert_eq!(Spool::records(dir.path()).unwrap().len(), 4);
}

#[tokio::test]
async fn a_record_is_held_while_its_header_and_bytes_check_out() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Layout::default()).unwrap();
    spool.recover(&HashMap::new()).unwrap();
    let a = put(&spool, b"the first instance").await;
    let stored_a = a.stored();
    a.keep();
    let b = put(&spool, b"the second instance").await;
    let stored_b = b.stored();
    b.keep();
    assert!(Spool::holds(&stored_a).unwrap());
    assert!(Spool::holds(&stored_b).unwrap());
    // Not a record's place, or longer than it.
    let elsewhere = Stored {
        offset: stored_b.offset + 1,
        ..stored_b.clone()
    };
    assert!(!Spool::holds(&elsewhere).unwrap());
    let longer = Stored {
        length: stored_a.length + 1,
        ..stored_a.clone()
    };
    assert!(!Spool::holds(&longer).unwrap());
    // A byte that never reached the disk, and then a header that never did.
    let file = File::options().write(true).open(&stored_b.path).unwrap();
    file.write_all_at(b"X", stored_b.offset + 4).unwrap();
    assert!(!Spool::holds(&stored_b).unwrap());
    file.write_all_at(&[0; HEADER as usize], stored_a.offset - HEADER)
        .unwrap();
    assert!(!Spool::holds(&stored_a).unwrap());
}

#[tokio::test]
async fn concurrent_writers_use_their_own_segments() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Layout::default()).unwrap();
    spool.recover(&HashMap::new()).unwrap();
    let mut a = spool.begin(sender()).await.unwrap();
    let mut b = spool.begin(sender()).await.unwrap();
    assert_ne!(a.place().0, b.place().0);
    a.write(b"one").unwrap();
    b.write(b"two").unwrap();
    a.finish().await.unwrap();
    b.finish().await.unwrap();
    let (sa, sb) = (a.stored(), b.stored());
    a.keep();
    b.keep();
    assert_eq!(sa.read().unwrap(), b"one");
    assert_eq!(sb.read().unwrap(), b"two");
    // A segment header a crash cut short is removed at the next start.
    std::fs::write(dir.path().join("segments/00000009.seg"), b"DKSEG").unwrap();
    let again = Spool::open(dir.path(), Layout::default()).unwrap();
    assert_eq!(again.recover(&HashMap::new()).unwrap().len(), 2);
    assert!(!dir.path().join("segments/00000009.seg").exists());
}
