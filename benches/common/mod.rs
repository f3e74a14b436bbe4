//! Child processes of the benches: spawned, read until ready, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// `serve` flags that lift the per-server request rate and in-flight limits
/// out of reach: for benches whose load generator is one client sending
/// thousands of requests per second to one URL (which the defaults refuse,
/// as they should).
#[allow(dead_code)]
pub const NO_FAIRNESS: [&str; 6] = [
    "--max-in-flight-per-server",
    "1000000",
    "--max-requests-per-second-per-server",
    "1000000",
    "--request-burst-per-server",
    "1000000",
];

/// A child process, killed when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` and returns it with the first `http://` URL on a stdout
/// line that `wanted` accepts (and the rest of that line).
pub fn spawn_until(mut command: Command, wanted: &str) -> anyhow::Result<(Child, Vec<String>)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Child(command.spawn()?);
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().ok_or_else(|| {
            anyhow::anyhow!("child exited before printing `{wanted}`: {seen:?}")
        })??;
        let done = line.contains(wanted);
        seen.push(line);
        if done {
            // Keep reading (and dropping) its output so that it never blocks.
            std::thread::spawn(move || for _ in lines {});
            return Ok((child, seen));
        }
    }
}

pub fn url_in(line: &str) -> Option<String> {
    let i = line.find("http://")?;
    Some(line[i..].split_whitespace().next()?.to_owned())
}

/// Provisions another MCP server (every tool) on the first integrated
/// account through the admin API of the `serve` at `base`: its MCP URL.
#[allow(dead_code)]
pub async fn provision(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    name: &str,
) -> anyhow::Result<String> {
    use serde_json::Value;
    let accounts: Value = http
        .get(format!("{base}/admin/integrated-accounts"))
        .bearer_auth(admin_token)
        .send()
        .await?
        .json()
        .await?;
    let account = accounts
        .pointer("/items/0/id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("no account in {accounts}"))?;
    let created: Value = http
        .post(format!("{base}/admin/integrated-accounts/{account}/mcp"))
        .bearer_auth(admin_token)
        .json(&serde_json::json!({"name": name, "config": {"methods": [], "tags": []}}))
        .send()
        .await?
        .json()
        .await?;
    created["url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no url in {created}"))
}
