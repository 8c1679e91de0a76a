//! The server under test: either one the harness spawns (and can restart) or an external
//! process whose PID is known (for its RSS), or neither (remote endpoint, no RSS).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::client::Sfn;

/// How to start a stepwise binary.
pub struct Spawn {
    pub path: PathBuf,
    pub port: u16,
    pub store: String,
    pub data_dir: PathBuf,
    /// Further `serve` arguments (`--endpoint dynamodb=URL`, `--server-arg`).
    pub extra_args: Vec<String>,
}

pub struct Server {
    spawn: Option<Spawn>,
    child: Option<Child>,
    pid: Option<u32>,
}

impl Server {
    /// An external server, with its PID when known.
    pub fn external(pid: Option<u32>) -> Server {
        Server {
            spawn: None,
            child: None,
            pid,
        }
    }

    /// Starts `path serve` on a fresh data directory and waits until it answers.
    pub async fn spawn(spawn: Spawn, sfn: &Sfn) -> Result<Server> {
        if sfn.call("ListStateMachines", &json!({})).await.is_ok() {
            bail!("another server already answers on the endpoint");
        }
        let _ = std::fs::remove_dir_all(&spawn.data_dir);
        let mut server = Server {
            spawn: Some(spawn),
            child: None,
            pid: None,
        };
        server.launch(sfn).await?;
        Ok(server)
    }

    pub fn can_restart(&self) -> bool {
        self.spawn.is_some()
    }

    pub fn is_durable(&self) -> bool {
        self.spawn.as_ref().is_none_or(|s| s.store != "memory")
    }

    /// Resident set size in MiB (`VmRSS` from `/proc/PID/status`).
    pub fn rss_mib(&self) -> Option<f64> {
        self.status_mib("VmRSS:")
    }

    /// Peak resident set size in MiB since the process started or since
    /// [`Server::reset_peak_rss`] (`VmHWM`).
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.status_mib("VmHWM:")
    }

    /// Resets the peak RSS to the current RSS (writes `5` to `/proc/PID/clear_refs`; Linux,
    /// same user). Returns whether it worked.
    pub fn reset_peak_rss(&self) -> bool {
        self.pid
            .is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }

    fn status_mib(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// Kills the server (SIGKILL: the crash case) and starts it again on the same data;
    /// returns how long until it answered requests.
    pub async fn restart(&mut self, sfn: &Sfn) -> Result<Duration> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        let started = Instant::now();
        self.launch(sfn).await?;
        Ok(started.elapsed())
    }

    async fn launch(&mut self, sfn: &Sfn) -> Result<()> {
        let spawn = self.spawn.as_ref().context("not a spawned server")?;
        let child = Command::new(&spawn.path)
            .args(["serve", "--host", "127.0.0.1", "--port"])
            .arg(spawn.port.to_string())
            .arg("--store")
            .arg(&spawn.store)
            .arg("--data-dir")
            .arg(&spawn.data_dir)
            .args(&spawn.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", spawn.path.display()))?;
        self.pid = child.id();
        let child = self.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        while sfn.call("ListStateMachines", &json!({})).await.is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("the spawned server exited: {status}");
            }
            if Instant::now() > deadline {
                bail!("the spawned server did not answer within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(spawn) = &self.spawn {
            let _ = std::fs::remove_dir_all(&spawn.data_dir);
        }
    }
}
