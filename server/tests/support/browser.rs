//! A real headless Chromium for tests, driven over WebDriver: Debian's `chromium` and
//! `chromium-driver`, talked to by fantoccini.
//!
//! ```ignore
//! mod support;
//! use support::browser::browser;
//!
//! #[tokio::test]
//! async fn the_dashboard_connects() {
//!     let Some(browser) = browser().await else { return }; // skipped, and it said so
//!     browser.goto(&url).await;
//!     browser.wait_for_text("connected", Duration::from_secs(5)).await;
//!     browser.close().await;
//! }
//! ```
//!
//! - Every [`browser()`] starts its own chromedriver on a free port, and that starts its own
//!   Chromium with a fresh profile in a scratch directory, so tests and test binaries run in
//!   parallel without sharing anything.
//! - Everything is torn down when the [`Browser`] drops, also when the test panics. On a panic
//!   chromedriver's log stays in the scratch directory, and the message names it.
//! - When the browser is missing, or `WIRELAB_SKIP_BROWSER=1` (`cargo xtask test` sets it when
//!   it found no browser), [`browser()`] returns None after printing `SKIPPING browser test: …`;
//!   under `CI=true` it panics instead: CI never skips the browser.
//! - [`Browser`] derefs to [`fantoccini::Client`] for everything the helpers don't cover.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use std::{env, fs, process, thread};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const INSTALL_HINT: &str = "apt-get install chromium chromium-driver";

/// Chromium's flags: headless, and quiet on the network (a sandboxed machine can't reach
/// Google's update, sync or QUIC endpoints, and Chromium keeps retrying them otherwise).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
];

/// The page's size (CSS pixels), and so the screenshots'.
const VIEWPORT: (u32, u32) = (1280, 800);

/// How long chromedriver may take to listen on its port.
const DRIVER_START: Duration = Duration::from_secs(10);

/// A headless Chromium session; closes it, stops chromedriver and removes the scratch
/// directory on drop.
pub(crate) struct Browser {
    /// The WebDriver session (also reachable through `Deref`).
    client: Client,
    /// The session's id while it is open, so `Drop` can end it without an async runtime.
    session: Option<String>,
    /// chromedriver, killed on drop (after the session, so Chromium quits cleanly first).
    driver: Driver,
    /// The profile and chromedriver's log, removed on drop (dropped last).
    scratch: Scratch,
}

/// A new headless Chromium, or None (after saying so) when there is none and we may skip.
///
/// Panics when the browser is missing under `CI=true`, or is there but does not start.
pub(crate) async fn browser() -> Option<Browser> {
    browser_with_home(None).await
}

/// [`browser`], with `HOME` set to `home` for chromedriver and Chromium: Chromium on Linux
/// trusts the CAs in `$HOME/.pki/nssdb` (what its certificate settings edit).
pub(crate) async fn browser_with_home(home: Option<&Path>) -> Option<Browser> {
    let (chromium, chromedriver) = locate()?;
    let scratch = Scratch::new();
    let log = scratch.path.join("chromedriver.log");
    // On a loaded 2-core machine, with several browsers starting at once, a session now and
    // then fails to open before chromedriver has logged anything: try a fresh chromedriver
    // and profile up to three times before calling the browser broken.
    let mut attempt = 1;
    let (client, driver) = loop {
        let profile = scratch.path.join(format!("profile-{attempt}"));
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|arg| arg.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let driver = Driver::start(&chromedriver, &log, home).await;
        let opened = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await;
        match opened {
            Ok(client) => break (client, driver),
            Err(err) if attempt < 3 => {
                eprintln!("chromedriver could not start Chromium (attempt {attempt}): {err}");
                drop(driver);
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => panic!(
                "chromedriver could not start Chromium ({}) in {attempt} attempts: {err}\n\
                 chromedriver's log: {}\n\
                 If the versions differ, install both together: {INSTALL_HINT}",
                chromium.display(),
                log.display(),
            ),
        }
    };
    let session = client.session_id().await.ok().flatten();
    let browser = Browser {
        client,
        session,
        driver,
        scratch,
    };
    browser.fit_viewport().await;
    Some(browser)
}

impl Browser {
    /// Headless Chromium counts its (invisible) toolbars in `--window-size`: grow the window
    /// by their size so the page itself gets [`VIEWPORT`], as screenshots should show it.
    async fn fit_viewport(&self) {
        let script = "return [window.outerWidth - window.innerWidth, \
                      window.outerHeight - window.innerHeight]";
        let bars = self.client.execute(script, Vec::new()).await;
        let bars = bars
            .ok()
            .and_then(|bars| serde_json::from_value::<[u32; 2]>(bars).ok());
        let [width, height] = bars.unwrap_or_default();
        let (vw, vh) = VIEWPORT;
        if let Err(err) = self.client.set_window_size(vw + width, vh + height).await {
            panic!("browser could not resize its window: {err}");
        }
    }

    /// Opens `url`; panics if the browser can't.
    pub(crate) async fn goto(&self, url: &str) {
        if let Err(err) = self.client.goto(url).await {
            panic!("browser could not open {url}: {err}");
        }
    }

    /// The page's visible text (`document.body.innerText`).
    pub(crate) async fn body_text(&self) -> String {
        let script = "return document.body ? document.body.innerText : ''";
        match self.client.execute(script, Vec::new()).await {
            Ok(Value::String(text)) => text,
            Ok(other) => panic!("document.body.innerText was not a string: {other}"),
            Err(err) => panic!("browser could not read the page's text: {err}"),
        }
    }

    /// Waits until the page's visible text contains `text`, polling every 50 ms.
    ///
    /// Panics after `timeout` with the page's text and the path of a screenshot of it.
    pub(crate) async fn wait_for_text(&self, text: &str, timeout: Duration) {
        let Err(body) = self.try_wait_for_text(text, timeout).await else {
            return;
        };
        let shot = self.scratch.failure_screenshot_path();
        let png = self.client.screenshot().await;
        let shot = match png.map(|png| fs::write(&shot, png)) {
            Ok(Ok(())) => shot.display().to_string(),
            _ => "(could not take one)".to_owned(),
        };
        let url = self.client.current_url().await;
        let url = url.map_or_else(|err| format!("(unknown url: {err})"), |url| url.to_string());
        let mut body = body;
        if body.len() > 2000 {
            body.truncate(body.floor_char_boundary(2000));
            body.push_str(" …");
        }
        panic!(
            "browser did not see {text:?} within {timeout:?} on {url}\nscreenshot: {shot}\n\
             page text:\n{body}"
        );
    }

    /// Waits up to `timeout` for the page's visible text to contain `text`: Ok as soon as it
    /// does, else Err with the text it had last. For checking that something does *not* show.
    pub(crate) async fn try_wait_for_text(
        &self,
        text: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let body = self.body_text().await;
            if body.contains(text) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the viewport (1280×800) to `path`, creating its directory.
    pub(crate) async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|err| panic!("browser could not take a screenshot: {err}"));
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap_or_else(|err| panic!("mkdir {}: {err}", dir.display()));
        }
        fs::write(path, png).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
    }

    /// Ends the session (Chromium quits). Dropping does this too; this way is async and
    /// reports nothing, it just doesn't block the runtime's thread.
    pub(crate) async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.session = None;
    }
}

impl Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop can't await, and the test's runtime may be gone by the time fantoccini's own
        // session task would end the session: say DELETE to chromedriver directly instead.
        if let Some(session) = self.session.take() {
            delete_session(self.driver.port, &session);
        }
    }
}

/// Finds Chromium and chromedriver, or decides to skip (None) or fail (panic).
fn locate() -> Option<(PathBuf, PathBuf)> {
    let ci = env::var("CI").is_ok_and(|value| value == "true" || value == "1");
    if env::var("WIRELAB_SKIP_BROWSER").is_ok_and(|value| value == "1") {
        assert!(
            !ci,
            "WIRELAB_SKIP_BROWSER=1 under CI=true: CI must run the browser tests ({INSTALL_HINT})"
        );
        say("SKIPPING browser test: WIRELAB_SKIP_BROWSER=1");
        return None;
    }
    let chromium = executable("/usr/bin/chromium").or_else(|| on_path("chromium"));
    let chromedriver = on_path("chromedriver").or_else(|| executable("/usr/bin/chromedriver"));
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some((chromium, chromedriver)),
        (chromium, _) => {
            let missing = if chromium.is_none() {
                "chromium"
            } else {
                "chromedriver"
            };
            assert!(
                !ci,
                "CI=true and {missing} is not installed: under CI the browser tests must run. \
                 Install it: {INSTALL_HINT}"
            );
            say(&format!(
                "SKIPPING browser test: {missing} not found ({INSTALL_HINT})"
            ));
            None
        }
    }
}

/// Prints a line straight to stderr, past the test harness's output capture, so a skip is
/// seen even when the test passes.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn executable(path: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    path.is_file().then_some(path)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| file.is_file())
}

/// A running chromedriver, killed on drop.
struct Driver {
    /// The chromedriver process.
    child: Child,
    /// The port it listens on (on 127.0.0.1).
    port: u16,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it listens; a port taken between
    /// our probe and its bind is retried on another.
    async fn start(chromedriver: &Path, log: &Path, home: Option<&Path>) -> Driver {
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(chromedriver);
            if let Some(home) = home {
                command.env("HOME", home);
            }
            let child = command
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| panic!("could not start {}: {err}", chromedriver.display()));
            let mut driver = Driver { child, port };
            if driver.wait_listening().await {
                return driver;
            }
        }
        panic!(
            "chromedriver did not start listening (3 tries); its log: {}",
            log.display()
        );
    }

    /// Whether chromedriver listens within [`DRIVER_START`]; false if it exits or doesn't.
    async fn wait_listening(&mut self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + DRIVER_START;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// `DELETE /session/{id}` to chromedriver, blocking: ends the session and quits Chromium.
/// Best effort: errors are ignored, since this runs in `Drop`.
fn delete_session(port: u16, session: &str) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // Read the whole response (chromedriver answers once Chromium has quit), stopping at its
    // end rather than waiting for the connection to close.
    let mut response = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        response.extend_from_slice(&chunk[..n]);
        if response_complete(&response) {
            break;
        }
    }
}

/// Whether `response` holds a full HTTP response with a `Content-Length` body.
fn response_complete(response: &[u8]) -> bool {
    let Some(head_end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    length.is_some_and(|length| response.len() >= head_end + 4 + length)
}

/// A scratch directory for one browser: its profile and chromedriver's log.
struct Scratch {
    /// `$TMPDIR/wirelab-browser-<pid>-<n>`.
    path: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = env::temp_dir().join(format!("wirelab-browser-{}-{n}", process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(path.join("profile"))
            .unwrap_or_else(|err| panic!("mkdir {}: {err}", path.display()));
        Scratch { path }
    }

    /// Where a failed wait saves its screenshot (the directory stays when the test fails).
    fn failure_screenshot_path(&self) -> PathBuf {
        self.path.join("failure.png")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            // Keep chromedriver's log for the post-mortem; the profile is megabytes of noise.
            let _ = fs::remove_dir_all(self.path.join("profile"));
            say(&format!(
                "browser test failed; chromedriver's log (and any failure.png) is in {}",
                self.path.display()
            ));
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
