//! A loopback HTTP/1.1 server for the sources' unit tests: fixed answers by
//! path (404 for anything else), one connection per request, and bodies
//! that can be cut short to simulate a dropped connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What a path answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The whole body (its length is the `Content-Length`).
    pub body: Vec<u8>,
    /// Send only this many body bytes, then close the connection.
    pub cut_after: Option<usize>,
}

impl Reply {
    /// `200` with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            body: body.into(),
            cut_after: None,
        }
    }
}

/// A running server; it lives until the test process ends.
#[derive(Debug, Clone)]
pub(crate) struct TestServer {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
}

impl TestServer {
    /// Starts listening on 127.0.0.1 (an ephemeral port).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = TestServer {
            port: listener.local_addr().unwrap().port(),
            routes: Arc::default(),
        };
        let routes = server.routes.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let routes = routes.clone();
                std::thread::spawn(move || serve(conn, &routes));
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Makes `path` answer `reply`.
    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }
}

fn serve(mut conn: TcpStream, routes: &Mutex<HashMap<String, Reply>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = routes.lock().unwrap().get(&path).cloned().unwrap_or(Reply {
        status: 404,
        body: b"not found".to_vec(),
        cut_after: None,
    });
    let sent = reply.cut_after.unwrap_or(reply.body.len());
    let _ = write!(
        conn,
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    let _ = conn.write_all(&reply.body[..sent]);
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}
