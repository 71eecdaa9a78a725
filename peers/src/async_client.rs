//! The two tasks of the busy round trip (d), as the async peers (tokio,
//! actix, kameo, ractor) run them: a stream producer and a timed client.
//! Each peer passes its own send and request/reply at the call site, so the
//! library is still driven the way its users drive it; these helpers only
//! hold the loop around them, which is the same for all four.

use crate::contender::Stream;
use std::time::Instant;

/// The stream producer: while the client has not stopped the stream, runs
/// `batch` (send `STREAM_BATCH` one-way messages, then one request/reply
/// that waits until the receiver has taken them) and counts it taken.
/// Marks the stream exited however the loop ends, so that a failed stream
/// cannot leave the client waiting for its first batch.
pub async fn stream_batches<F, Fut, E>(control: &Stream, mut batch: F) -> Result<(), E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let result = async {
        while control.running() {
            batch().await?;
            control.batch_done();
        }
        Ok(())
    }
    .await;
    control.exited();
    result
}

/// The client: waits until the stream has delivered a first batch, then
/// times `m` sequential request/replies made by `ask`, one sample (ns) each,
/// and stops the stream whatever happened.
pub async fn timed_round_trips<F, Fut, T, E>(
    m: u64,
    control: &Stream,
    mut ask: F,
) -> Result<Vec<u64>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    while !control.started() {
        tokio::task::yield_now().await;
    }
    let result = async {
        let mut samples = Vec::with_capacity(m as usize);
        for _ in 0..m {
            let t = Instant::now();
            ask().await?;
            samples.push(t.elapsed().as_nanos() as u64);
        }
        Ok(samples)
    }
    .await;
    // Stop the stream whatever happened.
    control.stop();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contender::STREAM_BATCH;

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_client_times_every_trip_then_stops_the_stream() {
        let control = Stream::new();
        control.batch_done();
        let mut asked = 0;
        let samples = block_on(timed_round_trips(5, &control, || {
            asked += 1;
            let reply = asked;
            async move { Ok::<_, ()>(reply) }
        }))
        .unwrap();
        assert_eq!((samples.len(), asked), (5, 5));
        assert!(!control.running());
    }

    #[test]
    fn a_failed_trip_stops_the_stream_too() {
        let control = Stream::new();
        control.exited();
        let result = block_on(timed_round_trips(5, &control, || async {
            Err::<(), _>("gone")
        }));
        assert_eq!(result, Err("gone"));
        assert!(!control.running());
    }

    #[test]
    fn the_stream_counts_its_batches_until_stopped() {
        let control = Stream::new();
        let stopper = control.clone();
        let mut batches = 0;
        block_on(stream_batches(&control, || {
            batches += 1;
            if batches == 3 {
                stopper.stop();
            }
            async { Ok::<_, ()>(()) }
        }))
        .unwrap();
        assert_eq!(control.sent(), 3 * STREAM_BATCH);
    }

    #[test]
    fn a_failed_stream_exits_so_the_client_cannot_wait_forever() {
        let control = Stream::new();
        let result = block_on(stream_batches(&control, || async { Err::<(), _>("gone") }));
        assert_eq!(result, Err("gone"));
        assert_eq!(control.sent(), 0);
        assert!(control.started());
    }
}
