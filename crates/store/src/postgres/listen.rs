//! `LISTEN` on a connection of its own (a pooled one cannot wait for notifications): a node
//! that sends a signal to another node's inbox notifies [`INBOX`] (payload: the shard), and
//! one that offers an activity task notifies [`ACTIVITIES`] (payload: the activity), so the
//! nodes read their inboxes, and parked `GetActivityTask` polls look for a task, at once
//! rather than at their next poll. Notifications are only news: the rows are the truth, so
//! one lost (a dropped connection) delays a signal or a task by a poll, no more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The channel inbox signals are announced on.
pub(super) const INBOX: &str = "stepwise_inbox";
/// The channel offered activity tasks are announced on.
pub(super) const ACTIVITIES: &str = "stepwise_activity_tasks";

/// How long to wait before connecting again after the connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

/// Whom to tell.
#[derive(Clone, Default)]
pub(super) struct News {
    /// The engine's inbox loop (one waiter).
    pub signals: Arc<Notify>,
    /// Parked `GetActivityTask` polls, per activity ARN: a notification of offered tasks wakes
    /// one poll of its activity, not all of them (one that wakes for nothing, another node
    /// having taken the task, goes back to waiting).
    activities: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl News {
    /// The notification of the tasks offered for `activity_arn`.
    pub fn activity(&self, activity_arn: &str) -> Arc<Notify> {
        let mut map = self
            .activities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(activity_arn.to_owned()).or_default().clone()
    }

    fn tell(&self, channel: &str, payload: &str) {
        match channel {
            INBOX => self.signals.notify_one(),
            _ => self.activity(payload).notify_one(),
        }
    }

    /// Wakes everyone: what was sent while not listening is found by their next look.
    fn tell_all(&self) {
        self.signals.notify_one();
        let map = self
            .activities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for polls in map.values() {
            polls.notify_waiters();
        }
    }
}

/// Listens until the store is gone (no one else holds the news), reconnecting as needed.
pub(super) async fn run(config: tokio_postgres::Config, tls: MakeRustlsConnect, news: News) {
    while Arc::strong_count(&news.signals) > 1 {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let told = news.clone();
                let mut messages = std::pin::pin!(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                told.tell(n.channel(), n.payload());
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => return,
                        }
                    }
                });
                let listen = format!("LISTEN {INBOX}; LISTEN {ACTIVITIES}");
                tokio::select! {
                    listened = client.batch_execute(&listen) => match listened {
                        Ok(()) => (&mut messages).await,
                        Err(e) => tracing::warn!(error = %e, "cannot listen for other nodes' news"),
                    },
                    () = &mut messages => {}
                }
                news.tell_all();
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to listen for other nodes' news"),
        }
        tokio::time::sleep(RECONNECT).await;
    }
}
