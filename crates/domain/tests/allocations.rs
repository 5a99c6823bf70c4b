//! Steady-state updates allocate nothing: once a state has filled its
//! window, scoring and learning a value touches no allocator. Counted with a
//! global allocator that tallies allocations on this test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use txwatch_domain::{AnyDetector, Detector, DetectorKind};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let boxed = std::hint::black_box(Box::new([0u8; 64]));
    assert!(allocations() > before);
    drop(boxed);
}

#[test]
fn no_detector_allocates_per_value_once_its_window_is_full() {
    // Spikes for the point detectors, a level shift half way for the
    // relative-entropy one, which judges distributions.
    let series: Vec<f64> = (0..10_000)
        .map(|i| {
            let level = if i < 5_000 { 100.0 } else { 400.0 };
            level + f64::from(i % 17) + f64::from(i % 250 == 0) * 5_000.0
        })
        .collect();
    // A value every 5 minutes, for the time-aware path too.
    let start = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(19_723);
    let times: Vec<time::OffsetDateTime> = (0..series.len())
        .map(|i| start + time::Duration::minutes(5 * i as i64))
        .collect();
    for kind in DetectorKind::ALL {
        let detector = AnyDetector::with_defaults(kind);
        let mut state = detector.state_from_history(series[..300].iter().copied());
        let mut timed = detector
            .state_from_timed_history(times.iter().copied().zip(series[..300].iter().copied()));
        let before = allocations();
        let mut flagged = 0;
        for (at, value) in times[300..].iter().zip(&series[300..]) {
            flagged += usize::from(detector.observe(&mut state, *value).is_anomaly());
            detector.observe_at(&mut timed, *at, *value);
        }
        assert_eq!(
            allocations() - before,
            0,
            "{} allocated while scoring",
            kind.as_str()
        );
        assert!(flagged > 0, "{} scored nothing as anomalous", kind.as_str());
    }
}
