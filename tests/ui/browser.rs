//! One headless Chromium driven through chromedriver (WebDriver), with screenshots and an
//! axe-core accessibility check of every page.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    prefix: String,
    step: usize,
    axe: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn chromium_binary() -> String {
    if let Ok(p) = std::env::var("CHROME_BIN") {
        return p;
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return p.to_owned();
        }
    }
    panic!(
        "Chromium not found (looked at CHROME_BIN, /usr/bin/chromium): install the Debian packages \
         `chromium` and `chromium-driver` (`.ci/run` does) to run the browser tests"
    );
}

impl Browser {
    pub async fn start(prefix: &str) -> Self {
        let axe_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/ui/node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| {
            panic!(
                "axe-core not found at {} ({e}): run `npm ci --prefix tests/ui` (`.ci/run` does)",
                axe_path.display()
            )
        });
        let binary = chromium_binary();
        let driver_path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({driver_path}: {e}): install the Debian packages \
                     `chromium` and `chromium-driver` (`.ci/run` does), or set CHROMEDRIVER"
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=fr-FR",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let caps = caps.as_object().cloned().expect("object");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut client = None;
        let mut last = String::new();
        for _ in 0..100 {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let client =
            client.unwrap_or_else(|| panic!("chromedriver did not start a session: {last}"));
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Self {
            client,
            driver,
            _profile: profile,
            shots,
            prefix: prefix.to_owned(),
            step: 0,
            axe,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    /// Waits until the page's `<h1>` contains `text` (after a click that navigates).
    pub async fn wait_h1(&self, text: &str) {
        let mut seen = String::new();
        for _ in 0..100 {
            if let Ok(h) = self.client.find(Locator::Css("h1")).await
                && let Ok(t) = h.text().await
            {
                if t.contains(text) {
                    return;
                }
                seen = t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let source = self.client.source().await.unwrap_or_default();
        let head: String = source.chars().take(1500).collect();
        panic!("expected a page titled {text:?}, got {seen:?} at {url}:\n{head}");
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks something that loads a new page, and waits until the old page is gone.
    pub async fn submit(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.click(css).await;
        self.wait_gone(old).await;
    }

    /// Waits until an element of the previous page is detached (the new page is loading).
    pub async fn wait_gone(&self, old: fantoccini::elements::Element) {
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page did not change");
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// Waits until the text of `css` is no longer `old` (a script's answer), and returns it.
    pub async fn wait_text_change(&self, css: &str, old: &str) -> String {
        for _ in 0..100 {
            let t = self.text(css).await;
            if t != old {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css} still reads {old:?}");
    }

    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// A screenshot of this step, then the accessibility check of the page.
    pub async fn check(&mut self, name: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let file = self
            .shots
            .join(format!("{}-{:02}-{name}.png", self.prefix, self.step));
        std::fs::write(&file, png).expect("write screenshot");
        self.axe_check(name).await;
    }

    async fn axe_check(&self, name: &str) {
        self.client
            .execute(&self.axe, vec![])
            .await
            .expect("inject axe-core");
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] })
              .then(r => done(r.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => v.impact + " " + v.id + ": " + v.help + " [" +
                     v.nodes.map(n => n.target.join(" ")).join(", ") + "]")))
              .catch(e => done(["axe failed: " + e]));
        "#;
        let out = self
            .client
            .execute_async(script, vec![])
            .await
            .expect("run axe-core");
        let problems: Vec<String> = serde_json::from_value(out).expect("axe answer");
        assert!(
            problems.is_empty(),
            "accessibility violations on step {name}:\n{}",
            problems.join("\n")
        );
    }

    pub async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
