//! Child processes of the benches: spawned, read until ready, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

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
