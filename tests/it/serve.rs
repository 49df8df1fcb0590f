//! A static file server on 127.0.0.1 for tests that need a mirror or a package index:
//! Python's own `http.server`, a server pinfold did not write, started on a free port
//! and stopped when the value is dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct StaticServer {
    child: Child,
    port: u16,
}

impl StaticServer {
    /// Serves `dir` (its files as they are, directories as listings) until dropped.
    pub fn serve(dir: &Path) -> StaticServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (it serves the test's files)");
        // It prints "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..." once it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("http.server starts");
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("http.server printed no port: {line:?}"));
        StaticServer { child, port }
    }

    /// `http://127.0.0.1:PORT` with no trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_static_server_serves_a_file_on_loopback_and_stops() {
    use std::io::{Read, Write};
    let dir = crate::harness::tempdir();
    std::fs::write(dir.path().join("hello.txt"), "hello\n").unwrap();
    let server = StaticServer::serve(dir.path());
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200") && response.ends_with("\r\nhello\n"), "{response}");
    assert!(server.url().starts_with("http://127.0.0.1:"));
    let port = server.port;
    drop(server);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the server stopped");
}
