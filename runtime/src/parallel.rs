//! A parallel map over a slice on scoped threads, for independent compiler runs (NVRTC, ptxas,
//! cuobjdump) whose results are wanted in order.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` of every item, on up to [`std::thread::available_parallelism`] threads (each takes the
/// next item left, so uneven items balance), results in the items' order. A panic in `f` is
/// raised again on the caller's thread.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::par_map;

    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u64> = (0..100).collect();
        // Uneven work: later items finish first on other threads.
        let got = par_map(&items, |&x| {
            std::thread::sleep(std::time::Duration::from_micros((100 - x) * 20));
            x * x
        });
        assert_eq!(got, items.iter().map(|x| x * x).collect::<Vec<_>>());
        assert!(par_map(&[] as &[u8], |_| 0).is_empty());
    }

    #[test]
    #[should_panic(expected = "item 7")]
    fn a_panic_reaches_the_caller() {
        let items: Vec<u32> = (0..16).collect();
        par_map(&items, |&x| assert!(x != 7, "item {x}"));
    }
}
