//! A small Chrome DevTools Protocol client for the browser tests: starts the system's headless
//! Chromium (installed by `cargo xtask deps`, its path in `servers.env` as `CHROMIUM_BIN`),
//! attaches to a page over the DevTools WebSocket, navigates, evaluates JavaScript, takes
//! screenshots, and notes every JavaScript dialog the page opens (an executed `alert` would be
//! one).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};
use weir_testkit::servers::{binary_from_env_file, servers_env_file};

/// A headless Chromium with one attached page; dropping it kills the browser.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Messages of JavaScript dialogs the page opened.
    pub dialogs: Vec<String>,
    /// Exceptions the page threw.
    pub exceptions: Vec<String>,
    _profile: tempfile::TempDir,
}

/// The Chromium binary from `servers.env`; fails (never skips) with what to run when missing.
pub fn chromium() -> PathBuf {
    match binary_from_env_file(&servers_env_file(), "CHROMIUM_BIN") {
        Ok(path) => path,
        Err(e) => panic!(
            "the browser tests need Chromium: {e} (`cargo xtask deps` installs the Debian \
             package `chromium` and records CHROMIUM_BIN)"
        ),
    }
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and attaches to a blank page.
    pub fn launch(width: u32, height: u32) -> Browser {
        let binary = chromium();
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let url = devtools_url(&mut child);
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let stream = TcpStream::connect(&host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("DevTools WebSocket {url}: {e}"));
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            dialogs: Vec::new(),
            exceptions: Vec::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        attached["sessionId"]
            .as_str()
            .unwrap()
            .clone_into(&mut browser.session);
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }

    /// Sends a command (to the page once attached) and waits for its result.
    #[allow(clippy::needless_pass_by_value)] // callers build the parameters in place
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = Value::String(self.session.clone());
        }
        self.ws
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|e| panic!("sending {method}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method} in 30 s");
            let text = match self.ws.read() {
                Ok(Message::Text(text)) => text.to_string(),
                Ok(_) => continue,
                Err(e) => panic!("reading the answer to {method}: {e}"),
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"].as_u64() == Some(id) {
                if let Some(error) = value.get("error") {
                    panic!("{method} failed: {error}");
                }
                return value["result"].clone();
            }
            self.event(&value);
        }
    }

    fn event(&mut self, value: &Value) {
        match value["method"].as_str() {
            Some("Page.javascriptDialogOpening") => {
                self.dialogs
                    .push(value["params"]["message"].as_str().unwrap_or("").to_owned());
                // Dismiss it, or the page would hang.
                let session = self.session.clone();
                self.next_id += 1;
                let dismiss = json!({
                    "id": self.next_id, "sessionId": session,
                    "method": "Page.handleJavaScriptDialog", "params": { "accept": true }
                });
                let _ = self.ws.send(Message::text(dismiss.to_string()));
            }
            Some("Runtime.exceptionThrown") => self
                .exceptions
                .push(value["params"]["exceptionDetails"].to_string()),
            _ => {}
        }
    }

    /// Opens `url` in the page.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
    }

    /// Evaluates `expression` in the page and returns its value (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("evaluating {expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` every 100 ms until it is `true` (an exception counts as not yet:
    /// the page may still be loading); fails after `timeout` naming `what`.
    pub fn wait_for(&mut self, what: &str, expression: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let guarded = format!(
            "(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            if self.eval(&guarded) == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page did not show {what} within {timeout:?} ({expression})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads Chromium's standard error until it says where DevTools listens.
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(Ok(url.trim().to_owned()));
                // Keep draining, or Chromium blocks on a full pipe.
                seen.clear();
                continue;
            }
            seen.push(line);
            if seen.len() > 200 {
                seen.remove(0);
            }
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(url)) => url,
        Ok(Err(log)) => panic!("Chromium exited before DevTools listened:\n{log}"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("Chromium did not say where DevTools listens within 30 s")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("Chromium's log reader ended"),
    }
}
