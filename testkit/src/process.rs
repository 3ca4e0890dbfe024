//! Real processes for tests where a process must die: the `backend` binary
//! ([`ServerProcess`]) and `redis-server` ([`RedisServer`]), each on a free port, stopped
//! when dropped.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

use crate::TIMEOUT;

/// The flags that take the rate limits out of the way of tests that flood on purpose.
pub const UNLIMITED_FLAGS: [&str; 18] = [
    "--send-rate",
    "100000",
    "--send-burst",
    "100000",
    "--frame-rate",
    "100000",
    "--ip-send-rate",
    "100000",
    "--ip-send-burst",
    "100000",
    "--max-lines-per-sec",
    "100000",
    "--new-sessions-per-min",
    "100000",
    "--max-connections-per-ip",
    "1000",
    "--welcome-lines",
    "10000",
];

/// The real `backend` binary on a free port.
pub struct ServerProcess {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Runs `bin` (the `backend` binary: `env!("CARGO_BIN_EXE_backend")` in its tests and
    /// benches) on a free port of 127.0.0.1 with `args`, and [`UNLIMITED_FLAGS`] for every
    /// limit `args` does not set, and waits until it says where it listens. Its log is read
    /// (and dropped) so it never blocks on a full pipe.
    pub async fn start(bin: &Path, args: &[&str]) -> Self {
        Self::start_logged(bin, args).await.0
    }

    /// [`start`](Self::start), keeping its log: every line it writes after the one that
    /// says where it listens, in order.
    pub async fn start_logged(
        bin: &Path,
        args: &[&str],
    ) -> (Self, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let mut child = Command::new(bin)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .args(defaults_not_in(args))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the backend binary");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = tokio::time::timeout(TIMEOUT, async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .expect("read")
                    .expect("the server said where it listens");
                if let Some(rest) = line.split("serving http://").nth(1) {
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                    return addr.parse::<SocketAddr>().expect("an address");
                }
            }
        })
        .await
        .expect("the server started in time");
        let (log, logged) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                // Nobody listening is fine: the pipe is still drained.
                let _ = log.send(line);
            }
        });
        (ServerProcess { child, addr }, logged)
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// `ws://…/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Sends signal `name` (`KILL`, `TERM`, …) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the server exited in time")
            .expect("wait")
    }
}

/// The pairs of [`UNLIMITED_FLAGS`] whose flag `args` does not give (a flag given twice is
/// an error).
fn defaults_not_in<'a>(args: &[&str]) -> Vec<&'a str> {
    UNLIMITED_FLAGS
        .chunks(2)
        .filter(|pair| !args.contains(&pair[0]))
        .flatten()
        .copied()
        .collect()
}

/// A `redis-server` of the test's own: a free port, a fresh directory, AOF with
/// `appendfsync always` (an ack survives a Redis crash), no RDB snapshots.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its data directory (the append-only file lives there).
    pub dir: PathBuf,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`. Fails the test, saying how to install
    /// it, if `redis-server` is missing (`scripts/setup.sh` installs it).
    pub async fn start() -> Self {
        let port = crate::free_port();
        let dir = crate::fresh_data_dir();
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = RedisServer {
            child: None,
            port,
            dir,
        };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL (a crash: nothing flushed that was not already) and waits
    /// until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(TIMEOUT, child.wait()).await;
        }
    }

    /// Starts it (again) on the same port over the same directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--protected-mode",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "start redis-server (scripts/setup.sh installs it: apt-get install redis-server)",
            );
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !ping(self.port).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer PING in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a Redis on `port` answers `PING` (and has loaded its data).
async fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply)).await,
        Ok(Ok(_))
    ) && &reply == b"+PONG\r\n"
}
