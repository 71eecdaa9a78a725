//! A real `nats-server` with JetStream for the bridge's tests, examples and
//! benchmark: started on a free loopback port with a store of its own,
//! killed and restarted on the same port and store, stopped (and the store
//! removed) on drop. Standard library only, so any target can include it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Where the binary is looked for: `$NATS_SERVER`, then `PATH`, then
/// `/usr/sbin` (where the Debian package puts it, often not on `PATH`).
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        let path = PathBuf::from(path);
        // Set on purpose (as `.ci/run` does): a wrong path is an error, not
        // a reason to skip.
        assert!(
            path.is_file(),
            "NATS_SERVER={} is not a file; unset it to look on PATH",
            path.display()
        );
        return Some(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|path| path.is_file())
}

/// A running server (or, after `kill`, a stopped one that can restart).
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server, or `None` with a message on stderr when the binary
    /// is missing (`apt-get install nats-server`; `.ci/run` installs it).
    pub fn start() -> Option<NatsServer> {
        let Some(binary) = binary() else {
            eprintln!(
                "SKIPPED: nats-server not found (set NATS_SERVER, or `apt-get install nats-server`); the NATS bridge tests did not run"
            );
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let store = std::env::temp_dir().join(format!(
            "agentry-nats-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let port = free_port();
        let mut server = NatsServer {
            binary,
            port,
            store,
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL: no clean shutdown, as a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store, and returns once
    /// it says it is ready (its own log line, not a timer).
    pub fn restart(&mut self) {
        self.kill();
        std::fs::create_dir_all(&self.store).expect("create the store directory");
        let mut child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats-server");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready_tx.send(Ok(()));
                } else if log.len() < 200 {
                    log.push(line);
                }
            }
            // Ended without being ready: the log says why.
            let _ = ready_tx.send(Err(log.join("\n")));
        });
        match ready.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(log)) => panic!("nats-server exited before it was ready:\n{log}"),
            Err(_) => panic!("nats-server was not ready within 30 s"),
        }
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
