//! Host tests of the ring protocol: userspace producers write into anonymous
//! double mappings exactly as the kernel writes into a device's, and the
//! same reader code drains them.

use peregrine_driver_sys::{EventRef, MergedReader, Producer, UserRing, WriteOutcome};
use std::thread;
use std::time::Duration;

const SMALL_RING: u64 = 16 * 1024;

/// The record number `seq` of ring `ring`: sizes vary from 26 to ~350
/// bytes and every byte depends on (ring, seq), so any misplaced, torn
/// or repeated record is caught.
fn expected_record(ring: usize, seq: u64, ts: u64) -> Vec<u8> {
    let body_len = ((seq * 37) % 330) as usize;
    let mut rec = Vec::with_capacity(26 + body_len);
    rec.extend_from_slice(&ts.to_ne_bytes());
    rec.extend_from_slice(&(ring as u64 * 1_000_000 + seq).to_ne_bytes());
    rec.extend_from_slice(&((26 + body_len) as u32).to_ne_bytes());
    rec.extend_from_slice(&((seq % 400) as u16).to_ne_bytes());
    rec.extend_from_slice(&((seq % 7) as u32).to_ne_bytes());
    rec.extend((0..body_len).map(|i| (seq as usize * 31 + i * 7 + ring * 13) as u8));
    rec
}

/// Decodes (ring, seq) back from a record's tid.
fn origin(ev: &EventRef<'_>) -> (usize, u64) {
    ((ev.tid() / 1_000_000) as usize, ev.tid() % 1_000_000)
}

/// Writes `count` records, waiting for space instead of dropping.
fn produce_lossless(mut producer: Producer, ring: usize, count: u64, ts_of: impl Fn(u64) -> u64) {
    for seq in 0..count {
        let rec = expected_record(ring, seq, ts_of(seq));
        while producer.write_record(&rec).unwrap() != WriteOutcome::Written {
            thread::yield_now();
        }
    }
}

#[test]
fn concurrent_reader_gets_every_record_byte_exact_across_wraparounds() {
    const COUNT: u64 = 200_000;
    let (producer, mut ring) = UserRing::create(0, SMALL_RING).unwrap().split().unwrap();
    let writer = thread::spawn(move || produce_lossless(producer, 0, COUNT, |seq| seq));
    let mut next_seq = 0u64;
    let mut bytes = 0u64;
    while next_seq < COUNT {
        let n = ring
            .read_batch(64, |ev| {
                let (_, seq) = origin(&ev);
                assert_eq!(seq, next_seq, "records out of order or lost");
                assert_eq!(ev.bytes(), &expected_record(0, seq, seq)[..]);
                bytes += u64::from(ev.len());
                next_seq += 1;
            })
            .unwrap();
        if n == 0 {
            thread::yield_now();
        }
    }
    writer.join().unwrap();
    assert_eq!(ring.read_batch(usize::MAX, |_| ()).unwrap(), 0);
    assert!(
        bytes / SMALL_RING > 1000,
        "only {} wraparounds",
        bytes / SMALL_RING
    );
    assert_eq!(ring.stats().n_evts, COUNT);
}

#[test]
fn merged_reader_over_concurrent_producers_loses_nothing_and_sorts_each_batch() {
    const RINGS: usize = 4;
    const COUNT: u64 = 40_000;
    let mut rings = Vec::new();
    let mut writers = Vec::new();
    for id in 0..RINGS {
        let (producer, ring) = UserRing::create(id, SMALL_RING).unwrap().split().unwrap();
        rings.push(ring);
        // Interleaved clocks: ring r stamps seq*RINGS + r.
        writers.push(thread::spawn(move || {
            produce_lossless(producer, id, COUNT, |seq| seq * RINGS as u64 + id as u64)
        }));
    }
    let mut reader = MergedReader::new(rings);
    let mut next_seq = [0u64; RINGS];
    let mut total = 0;
    while total < RINGS as u64 * COUNT {
        let mut last_ts = 0;
        let n = reader
            .next_batch(256, |index, ev| {
                let (ring, seq) = origin(&ev);
                assert_eq!(ring, index);
                assert_eq!(seq, next_seq[ring]);
                assert_eq!(ev.bytes(), &expected_record(ring, seq, ev.ts())[..]);
                assert!(ev.ts() >= last_ts, "batch not in timestamp order");
                last_ts = ev.ts();
                next_seq[ring] += 1;
            })
            .unwrap();
        total += n as u64;
        if n == 0 {
            reader.wait(Duration::from_millis(50));
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(next_seq, [COUNT; RINGS]);
    let stats = reader.stats();
    assert_eq!(stats.total.n_evts, RINGS as u64 * COUNT);
    assert_eq!(
        stats.per_cpu.iter().map(|c| c.cpu).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
}

#[test]
fn merged_reader_yields_global_timestamp_order() {
    // Each ring in order by itself, the rings' clocks interleaved unevenly,
    // some rings idle for long stretches; read in small batches.
    let mut rings = Vec::new();
    let mut all_ts = Vec::new();
    for id in 0..5usize {
        let (mut producer, ring) = UserRing::create(id, 1 << 20).unwrap().split().unwrap();
        let mut ts = id as u64;
        for seq in 0..2_000u64 {
            ts += 1 + (seq * (id as u64 + 3) * 7919) % 50 + if seq % 500 == 0 { 5_000 } else { 0 };
            assert_eq!(
                producer
                    .write_record(&expected_record(id, seq, ts))
                    .unwrap(),
                WriteOutcome::Written
            );
            all_ts.push(ts);
        }
        rings.push(ring);
    }
    all_ts.sort_unstable();
    let mut reader = MergedReader::new(rings);
    let mut got = Vec::new();
    while reader.next_batch(7, |_, ev| got.push(ev.ts())).unwrap() > 0 {}
    assert_eq!(got, all_ts);
}

#[test]
fn drop_counters_are_exact_when_the_producer_overruns_a_slow_reader() {
    const ATTEMPTS: u64 = 30_000;
    let (mut producer, mut ring) = UserRing::create(0, 8192).unwrap().split().unwrap();
    let writer = thread::spawn(move || {
        let (mut written, mut full, mut too_large) = (0u64, 0u64, 0u64);
        let huge = vec![0u8; 9000];
        for seq in 0..ATTEMPTS {
            let outcome = if seq % 1000 == 999 {
                producer.write_event(seq, seq, 1, &[&huge]).unwrap()
            } else {
                producer
                    .write_record(&expected_record(0, seq, seq))
                    .unwrap()
            };
            match outcome {
                WriteOutcome::Written => written += 1,
                WriteOutcome::DroppedFull => full += 1,
                WriteOutcome::DroppedTooLarge => too_large += 1,
            }
        }
        assert_eq!(producer.stats().n_evts, written);
        (written, full, too_large)
    });
    let mut read = 0u64;
    let mut last_seq = None;
    let mut check = |ev: EventRef<'_>| {
        let (_, seq) = origin(&ev);
        assert!(last_seq.map_or(true, |last| seq > last), "order broken");
        assert_eq!(ev.bytes(), &expected_record(0, seq, seq)[..]);
        last_seq = Some(seq);
        read += 1;
    };
    while !writer.is_finished() {
        ring.read_batch(5, &mut check).unwrap();
        thread::sleep(Duration::from_micros(200));
    }
    let (written, full, too_large) = writer.join().unwrap();
    ring.read_batch(usize::MAX, &mut check).unwrap();
    let stats = ring.stats();
    assert_eq!(read, written);
    assert_eq!(stats.n_evts, read);
    assert_eq!(stats.n_drops_buffer, full);
    assert_eq!(stats.n_drops_too_large, too_large);
    assert_eq!(too_large, ATTEMPTS / 1000);
    assert!(
        full > 0,
        "the reader never fell behind; the test proves nothing"
    );
    assert_eq!(
        ATTEMPTS,
        read + stats.n_drops_buffer + stats.n_drops_too_large
    );
}

#[test]
fn idle_wait_sleeps_instead_of_spinning_and_wakes_on_data() {
    use nix::time::{clock_gettime, ClockId};
    let (mut producer, ring) = UserRing::create(0, 8192).unwrap().split().unwrap();
    let reader = MergedReader::new(vec![ring]);
    let cpu_before = Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap());
    assert!(!reader.wait(Duration::from_millis(300)));
    let cpu_used =
        Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap()) - cpu_before;
    assert!(
        cpu_used < Duration::from_millis(100),
        "idle wait burned {cpu_used:?} of CPU in 300ms"
    );

    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        assert_eq!(
            producer.write_event(1, 1, 1, &[]).unwrap(),
            WriteOutcome::Written
        );
        producer
    });
    assert!(reader.wait(Duration::from_secs(10)));
    writer.join().unwrap();
}

/// A trickle of records (the reader's own sleeps, as the module records
/// them) must not keep the reader waking at once: it is taken after a
/// sleep, and the pause grows; only a ring past the busy mark is read at
/// once, and brings the pause back.
#[test]
fn a_trickle_waits_out_the_pause_and_a_busy_ring_resets_it() {
    let (mut producer, ring) = UserRing::create(0, 1 << 17).unwrap().split().unwrap();
    let mut reader = MergedReader::new(vec![ring]);
    let policy = peregrine_driver_sys::WaitPolicy::default();
    assert_eq!(reader.current_pause(), policy.first_sleep);
    for seq in 0..12 {
        let pause = reader.current_pause();
        assert_eq!(
            producer
                .write_record(&expected_record(0, seq, seq))
                .unwrap(),
            WriteOutcome::Written
        );
        let start = std::time::Instant::now();
        assert!(reader.wait(Duration::from_secs(10)), "the record is there");
        assert!(
            start.elapsed() >= pause,
            "a trickle is taken after a pause, not at once"
        );
        assert_eq!(reader.next_batch(1024, |_, _| {}).unwrap(), 1);
    }
    assert_eq!(
        reader.current_pause(),
        policy.max_sleep,
        "a trickle must not reset the pause"
    );
    let mut written = 0;
    let mut seq = 100;
    while written <= policy.busy_bytes {
        let record = expected_record(0, seq, seq);
        written += record.len() as u64;
        assert_eq!(
            producer.write_record(&record).unwrap(),
            WriteOutcome::Written
        );
        seq += 1;
    }
    let start = std::time::Instant::now();
    assert!(reader.wait(Duration::from_secs(10)));
    assert!(
        start.elapsed() < policy.max_sleep,
        "a busy ring is read without the pause"
    );
    assert_eq!(
        reader.current_pause(),
        policy.first_sleep,
        "real traffic resets it"
    );
}

#[test]
fn a_short_batch_leaves_the_rest_for_the_next_one() {
    let (mut producer, mut ring) = UserRing::create(0, 8192).unwrap().split().unwrap();
    for seq in 0..10 {
        assert_eq!(
            producer
                .write_record(&expected_record(0, seq, seq))
                .unwrap(),
            WriteOutcome::Written
        );
    }
    let mut seen = Vec::new();
    assert_eq!(
        ring.read_batch(4, |ev| seen.push(origin(&ev).1)).unwrap(),
        4
    );
    assert_eq!(seen, [0, 1, 2, 3]);
    assert!(ring.has_data());
    assert_eq!(
        ring.read_batch(usize::MAX, |ev| seen.push(origin(&ev).1))
            .unwrap(),
        6
    );
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert!(!ring.has_data());
}
