//! What the engine's in-process tests share: an engine on a real SQLite file, run on a
//! current-thread runtime so that dropping the runtime stops it mid-work, as a crash would.

use std::sync::Arc;

use engine::{Config, Engine, SystemClock};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

pub async fn engine(dir: &std::path::Path) -> Engine {
    let store = store::Sqlite::open(dir).expect("the SQLite store opens");
    Engine::start(Config::default(), Arc::new(store), Arc::new(SystemClock))
        .await
        .expect("the engine starts")
}
