//! Group commit: many callers' writes carried by one statement and one WAL flush.
//!
//! A [`Batcher`] takes items from any number of concurrent callers and hands them to its
//! function in batches. It never waits to fill a batch: an item that arrives while fewer than
//! `in_flight` batches are running goes out at once, alone if need be, so a quiet server adds no
//! latency. Items that arrive while every slot is busy (each one waiting for its flush) pile up
//! and leave together as soon as a slot frees: under load, one flush carries many callers'
//! commits, and each caller still gets its answer only after its own item is durable.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::db::DbError;

type Slot<I, O> = (I, oneshot::Sender<Result<O, DbError>>);

/// A handle on a group-commit loop; cheap to clone.
pub struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<Slot<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<I, O> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the loop on the current Tokio runtime. `run` gets up to `max_batch` items and
    /// returns one result per item, in order; at most `in_flight` calls of `run` run at once.
    /// The loop ends when every handle is dropped.
    pub fn spawn<F, Fut>(max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<O, DbError>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Slot<I, O>>();
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        let run = Arc::new(run);
        let max_batch = max_batch.max(1);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Wait for a free slot first: what arrives meanwhile joins this batch.
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(slot) => batch.push(slot),
                        Err(_) => break,
                    }
                }
                let run = run.clone();
                tokio::spawn(async move {
                    let (items, replies): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                    let n = items.len();
                    let mut results = run(items).await.into_iter();
                    for reply in replies {
                        let result = results.next().unwrap_or_else(|| {
                            Err(DbError::Invalid(format!(
                                "a batch of {n} items gave fewer results"
                            )))
                        });
                        // A caller that gave up (its request was dropped) no longer listens.
                        let _ = reply.send(result);
                    }
                    drop(permit);
                });
            }
        });
        Self { tx }
    }

    /// Hands `item` to the loop and waits for its result.
    pub async fn call(&self, item: I) -> Result<O, DbError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((item, reply))
            .map_err(|_| DbError::Invalid("the group-commit loop has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::Invalid("the group-commit loop dropped an item".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn a_lone_item_goes_at_once_and_a_crowd_shares_batches_in_order() {
        let calls = Arc::new(AtomicUsize::new(0));
        let largest = Arc::new(AtomicUsize::new(0));
        let (c, l) = (calls.clone(), largest.clone());
        let b = Batcher::spawn(16, 1, move |items: Vec<u32>| {
            c.fetch_add(1, Ordering::SeqCst);
            l.fetch_max(items.len(), Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                items.into_iter().map(|i| Ok(i * 2)).collect()
            }
        });
        assert_eq!(b.call(21).await.unwrap(), 42);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one item, one call, no waiting to fill"
        );

        let answers = futures_join(100, |i| {
            let b = b.clone();
            async move { b.call(i).await }
        })
        .await;
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(
                a.unwrap(),
                2 * i as u32,
                "each caller gets its own item's result"
            );
        }
        let calls = calls.load(Ordering::SeqCst) - 1;
        assert!(
            (100 / 16..100).contains(&calls),
            "100 items in {calls} batches"
        );
        assert_eq!(
            largest.load(Ordering::SeqCst),
            16,
            "batches never exceed their cap"
        );
    }

    #[tokio::test]
    async fn a_short_answer_is_an_error_for_the_items_left_without_one() {
        let b = Batcher::spawn(8, 1, |items: Vec<u32>| async move {
            items.into_iter().skip(1).map(Ok).collect()
        });
        assert!(
            matches!(b.call(7).await, Err(DbError::Invalid(_))),
            "the item left without a result gets an error, not a hang"
        );
    }

    /// Runs `n` futures made by `f(0..n)` concurrently, results in order.
    async fn futures_join<F, Fut, T>(n: u32, f: F) -> Vec<T>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
