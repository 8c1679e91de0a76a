//! The runner's ready queue: executions that have work to do now, in the order they became
//! ready. An execution is in it at most once (a second `push` before it is taken changes
//! nothing, because one wake-up does all the work there is), so the queue never holds more
//! entries than there are live executions.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct ReadyQueue {
    queue: Mutex<Queue>,
    pushed: Notify,
}

#[derive(Default)]
struct Queue {
    order: VecDeque<String>,
    queued: HashSet<String>,
}

impl ReadyQueue {
    /// Queues `arn` unless it is queued already.
    pub fn push(&self, arn: String) {
        let mut q = crate::lock::lock(&self.queue);
        if q.queued.insert(arn.clone()) {
            q.order.push_back(arn);
            drop(q);
            self.pushed.notify_one();
        }
    }

    /// Takes the oldest entry, waiting for one.
    pub async fn pop(&self) -> String {
        loop {
            let pushed = self.pushed.notified();
            tokio::pin!(pushed);
            // Registered before looking, so a push between the look and the wait is not missed.
            pushed.as_mut().enable();
            if let Some(arn) = self.try_pop() {
                return arn;
            }
            pushed.await;
        }
    }

    fn try_pop(&self) -> Option<String> {
        let mut q = crate::lock::lock(&self.queue);
        let arn = q.order.pop_front()?;
        q.queued.remove(&arn);
        Some(arn)
    }

    pub fn len(&self) -> usize {
        crate::lock::lock(&self.queue).order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_execution_is_queued_once_and_in_order() {
        let q = ReadyQueue::default();
        for arn in ["a", "b", "a", "c", "b"] {
            q.push(arn.into());
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop().await, "a");
        q.push("a".into());
        let rest = [q.pop().await, q.pop().await, q.pop().await];
        assert_eq!(rest, ["b", "c", "a"]);
        assert_eq!(q.len(), 0);
    }

    #[tokio::test]
    async fn a_waiting_pop_is_woken_by_a_push() {
        let q = std::sync::Arc::new(ReadyQueue::default());
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        q.push("x".into());
        assert_eq!(waiting.await.ok().as_deref(), Some("x"));
    }
}
