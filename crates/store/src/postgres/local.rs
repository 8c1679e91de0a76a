//! A throw-away PostgreSQL server for tests: `initdb` and `pg_ctl` from the machine's
//! packages, in a temporary directory, on a free port, with fsync on, optionally for TLS
//! connections only; stopped and removed on drop.
//!
//! The binaries are found in `STEPWISE_PG_BIN`, else where `pg_config --bindir` says. Run as
//! root (CI), the server runs as the `postgres` user, since PostgreSQL refuses root.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What to do when the server cannot start: install the package.
const HOW_TO_FIX: &str = "install PostgreSQL's server package (scripts/setup-test-deps does), \
     or set STEPWISE_PG_BIN to the directory holding initdb and pg_ctl";

/// A running PostgreSQL server, stopped on drop.
pub struct LocalPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// The OS user the server runs as, when not the current one.
    run_as: Option<&'static str>,
    /// `on` when it takes TLS connections only.
    ssl: &'static str,
}

impl LocalPostgres {
    /// Starts a server; `Err` says what is missing and how to get it.
    pub fn start() -> Result<LocalPostgres, String> {
        LocalPostgres::start_with(None)
    }

    /// Starts a server that takes TLS connections only (`ssl=on`, nothing but `hostssl` lines
    /// in `pg_hba.conf`), presenting the certificate (chain) `cert_pem` with its key `key_pem`.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Result<LocalPostgres, String> {
        LocalPostgres::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Result<LocalPostgres, String> {
        let bin = bin_dir()?;
        for tool in ["initdb", "pg_ctl", "postgres"] {
            if !bin.join(tool).exists() {
                return Err(format!(
                    "{tool} not found in {}: {HOW_TO_FIX}",
                    bin.display()
                ));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("stepwise-pg-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let run_as = is_root().then_some("postgres");
        if let Some(user) = run_as {
            run(Command::new("chown").args(["-R", user]).arg(dir.path()))?;
        }
        let mut server = LocalPostgres {
            bin,
            dir,
            port: 0,
            run_as,
            ssl: "off",
        };
        let data = server.data();
        server.run_tool(
            "initdb",
            &[
                "-D",
                path(&data)?,
                "-U",
                "stepwise",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        if let Some((cert, key)) = tls {
            server.require_tls(cert, key)?;
            server.ssl = "on";
        }
        // A port can be taken between the probe and the start: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Stops the server (`pg_ctl stop -m fast`: its connections are closed), as a database
    /// that goes away for a while; [`LocalPostgres::start_again`] brings it back.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data();
        self.run_tool("pg_ctl", &["-D", path(&data)?, "-m", "fast", "-w", "stop"])
    }

    /// Starts the server again after [`LocalPostgres::stop`], on the same port and data.
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl_start()
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300 \
             -c ssl={}",
            self.port,
            path(self.dir.path())?,
            self.ssl
        );
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let args = ["-D", path(&data)?, "-l", path(&log)?, "-o", &options];
        self.run_tool(
            "pg_ctl",
            &[&args[..], &["-w", "-t", "60", "start"]].concat(),
        )
    }

    /// Starts a server, or panics with what is missing (a test that needs PostgreSQL fails
    /// when it is not there; it is never skipped).
    pub fn start_or_panic() -> LocalPostgres {
        LocalPostgres::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://stepwise@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        run(self.client_tool("createdb").arg(name))?;
        Ok(self.url(name))
    }

    /// Runs `sql` on `database` with `psql` and returns what it printed, unaligned, one row
    /// a line (tests that look at rows no API shows).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = run(self.client_tool("psql").args(["-At", "-c", sql, database]))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// A client program of the server's packages (`psql`, `createdb`), told how to connect.
    fn client_tool(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join(name));
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "stepwise",
        ]);
        command
    }

    /// Writes the server's certificate and key where `ssl=on` looks for them (`server.crt`,
    /// `server.key` in the data directory) and lets clients in over TLS only.
    fn require_tls(&self, cert_pem: &str, key_pem: &str) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;

        let data = self.data();
        let write = |name: &str, text: &str| {
            let file = data.join(name);
            std::fs::write(&file, text).map_err(|e| format!("writing {}: {e}", file.display()))?;
            Ok::<_, String>(file)
        };
        write("server.crt", cert_pem)?;
        let key = write("server.key", key_pem)?;
        // PostgreSQL refuses a key that others can read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod {}: {e}", key.display()))?;
        write(
            "pg_hba.conf",
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n",
        )?;
        if let Some(user) = self.run_as {
            run(Command::new("chown").args(["-R", user]).arg(&data))?;
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run_tool(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command.args(args);
        run(&mut command).map(drop)
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let data = self.data();
        if let Some(data) = data.to_str() {
            let _ = self.run_tool("pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"]);
        }
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("STEPWISE_PG_BIN") {
        return Ok(dir.into());
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map_err(|e| format!("pg_config: {e}: {HOW_TO_FIX}"))?;
    if !out.status.success() {
        return Err(format!("pg_config --bindir failed: {HOW_TO_FIX}"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn path(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("not a UTF-8 path: {}", p.display()))
}

fn run(command: &mut Command) -> Result<Output, String> {
    let out = command
        .output()
        .map_err(|e| format!("{command:?}: {e}: {HOW_TO_FIX}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}
