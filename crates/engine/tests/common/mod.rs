//! What the engine's in-process tests share: an engine on a real SQLite file and a manual
//! clock, run on a current-thread runtime so that dropping the runtime stops it mid-work, as a
//! crash would. Time moves only when a test advances the clock; nothing sleeps for it.

use std::sync::Arc;

use asl::history::HistoryEvent;
use engine::{Config, CreateStateMachine, Engine, HistoryQuery, ManualClock};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Where every test's clock starts (2026-01-01T00:00:00Z); an engine started again on the
/// same store starts its clock here too, so timers set before a restart are still ahead.
pub const T0: i64 = 1_767_225_600_000;

/// An engine on the SQLite store in `dir`, with its clock at [`T0`].
pub async fn engine(dir: &std::path::Path) -> (Engine, Arc<ManualClock>) {
    let store = store::Sqlite::open(dir).expect("the SQLite store opens");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = Engine::start(Config::default(), Arc::new(store), clock.clone())
        .await
        .expect("the engine starts");
    (engine, clock)
}

/// Creates a Standard state machine: its ARN.
pub async fn create_machine(engine: &Engine, name: &str, definition: String) -> String {
    let machine = engine
        .create_state_machine(CreateStateMachine {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            name: name.into(),
            definition,
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            kind: None,
            logging_configuration: None,
            tracing_configuration: None,
            tags: Vec::new(),
        })
        .await
        .expect("create");
    machine.arn
}

/// An execution's whole history, every page.
pub async fn history(engine: &Engine, arn: &str) -> Vec<HistoryEvent> {
    let (mut events, mut next_token) = (Vec::new(), None);
    loop {
        let page = engine
            .get_execution_history(HistoryQuery {
                arn: arn.into(),
                max_results: 1000,
                reverse: false,
                next_token,
            })
            .await
            .expect("history");
        events.extend(page.events);
        next_token = page.next_token;
        if next_token.is_none() {
            return events;
        }
    }
}
