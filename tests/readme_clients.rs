//! README's client section: every snippet is either run by
//! scripts/client-matrix.sh (the JSON configurations, the SDKs) or checked
//! here (the command lines), and the versions it names are the ones the
//! matrix pins.

use std::fs;
use std::path::Path;

use serde_json::Value;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The "Connecting a client" section, header form included.
fn section() -> String {
    let readme = read("README.md");
    let start = readme
        .find("## Connecting a client")
        .expect("a client section");
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + 1 + i);
    readme[start..end].to_owned()
}

/// The fenced blocks of `lang` in `text`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

/// Splits a command line like a shell, for the quoting README uses.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Indented command lines starting with `prefix`.
fn commands(text: &str, prefix: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with(prefix))
        .map(words)
        .collect()
}

fn pinned_npm(package: &str) -> String {
    let manifest: Value =
        serde_json::from_str(&read("scripts/clients/package.json")).expect("package.json");
    manifest["dependencies"][package]
        .as_str()
        .unwrap_or_else(|| panic!("{package} pinned in scripts/clients/package.json"))
        .to_owned()
}

const URL_FORM: &str = "http://127.0.0.1:8080/mcp/<token>";
const HEADER_URL: &str = "http://127.0.0.1:8080/mcp";
const BEARER: &str = "Authorization: Bearer <token>";

#[test]
fn claude_code_lines_use_the_url_and_the_header_form() {
    let lines = commands(&section(), "claude mcp add");
    let add = ["claude", "mcp", "add", "--transport", "http", "malomo"];
    let expected = [
        [&add[..], &[URL_FORM]].concat(),
        [&add[..], &[HEADER_URL, "--header", BEARER]].concat(),
    ];
    for want in expected {
        assert!(
            lines.iter().any(|l| *l == want),
            "README lacks `{}`; has {lines:?}",
            want.join(" ")
        );
    }
}

#[test]
fn the_inspector_cli_gets_the_header_form_at_a_url_ending_in_mcp() {
    let lines = commands(&section(), "npx @modelcontextprotocol/inspector --cli");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    let after = |flag: &str| {
        line.iter()
            .position(|w| w == flag)
            .and_then(|i| line.get(i + 1))
            .map(String::as_str)
    };
    // The CLI rewrites a URL not ending in /mcp, so the token cannot be in it.
    assert_eq!(line[3], HEADER_URL, "{line:?}");
    assert_eq!(after("--transport"), Some("http"), "{line:?}");
    assert_eq!(after("--header"), Some(BEARER), "{line:?}");
    assert_eq!(after("--method"), Some("tools/list"), "{line:?}");
}

#[test]
fn json_snippets_are_client_configurations_of_either_form() {
    let section = section();
    let snippets: Vec<Value> = blocks(&section, "json")
        .iter()
        .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}")))
        .collect();
    assert!(snippets.len() >= 5, "{} JSON snippets", snippets.len());
    let remote = format!("mcp-remote@{}", pinned_npm("mcp-remote"));
    let (mut stdio, mut bridged, mut http) = (0, 0, 0);
    for snippet in &snippets {
        let server = snippet["mcpServers"]["malomo"]
            .as_object()
            .or_else(|| snippet["servers"]["malomo"].as_object())
            .unwrap_or_else(|| panic!("no mcpServers.malomo / servers.malomo: {snippet}"));
        let args: Vec<&str> = server
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match (
            server.get("command").and_then(Value::as_str),
            server.get("url"),
        ) {
            (Some("npx"), None) => {
                bridged += 1;
                assert_eq!(args[..2], ["-y", remote.as_str()], "{snippet}");
                match args[2] {
                    URL_FORM => assert_eq!(args.len(), 3, "{snippet}"),
                    HEADER_URL => {
                        assert_eq!(args[3..], ["--header", "Authorization:${MALOMO_MCP_AUTH}"]);
                        assert_eq!(server["env"]["MALOMO_MCP_AUTH"], "Bearer <token>");
                    }
                    other => panic!("mcp-remote to {other}: {snippet}"),
                }
            }
            (Some(command), None) => {
                stdio += 1;
                assert!(command.ends_with("malomo-mcp"), "{snippet}");
                assert_eq!(args.first(), Some(&"stdio"), "{snippet}");
            }
            (None, Some(url)) => {
                http += 1;
                assert_eq!(url, HEADER_URL, "{snippet}");
                let auth = server["headers"]["Authorization"]
                    .as_str()
                    .unwrap_or_default();
                let declared: Vec<&str> = snippet["inputs"]
                    .as_array()
                    .map(|i| i.iter().filter_map(|i| i["id"].as_str()).collect())
                    .unwrap_or_default();
                assert!(
                    auth == "Bearer <token>"
                        || declared
                            .iter()
                            .any(|id| auth == format!("Bearer ${{input:{id}}}")),
                    "{snippet}"
                );
            }
            _ => panic!("neither a command nor a url: {snippet}"),
        }
    }
    assert_eq!((stdio, bridged), (1, 2), "Claude Desktop, both ways");
    assert_eq!(http, 2, "Cursor and VS Code");
}

#[test]
fn sdk_snippets_are_what_the_matrix_runs_at_its_pinned_versions() {
    let section = section();
    let sdk = pinned_npm("@modelcontextprotocol/sdk");
    assert!(
        section.contains(&format!("npm install @modelcontextprotocol/sdk@{sdk}")),
        "README names the pinned TypeScript SDK {sdk}"
    );
    let matrix_js = read("scripts/clients/exercise.mjs") + &read("scripts/clients/client.mjs");
    let js = blocks(&section, "js");
    assert_eq!(js.len(), 1);
    for import in js[0].lines().filter(|l| l.starts_with("import ")) {
        assert!(
            matrix_js.contains(import),
            "the matrix does not run `{import}`"
        );
    }
    assert!(js[0].contains("requestInit: { headers: { Authorization: `Bearer ${token}` } }"));
    assert!(matrix_js.contains("requestInit: { headers }"));

    let python_sh = read("scripts/python-client.sh");
    let version = python_sh
        .lines()
        .find_map(|l| l.strip_prefix("MCP_SDK_VERSION="))
        .expect("pinned Python SDK");
    assert!(
        section.contains(&format!("pip install mcp=={version}")),
        "README names the pinned Python SDK {version}"
    );
    let python = blocks(&section, "python");
    assert_eq!(python.len(), 1);
    let client_py = read("scripts/python_client.py");
    assert!(
        python[0].contains("from mcp import Client")
            && client_py.contains("from mcp import Client")
    );
    assert!(python[0].contains(&format!("Client(\"{URL_FORM}\")")));
}

#[test]
fn the_nonexistent_sse_package_is_only_named_as_such() {
    let readme = read("README.md");
    for (at, _) in readme.match_indices("@modelcontextprotocol/server-sse") {
        let around = &readme[at..(at + 120).min(readme.len())];
        assert!(around.contains("does not"), "{around}");
    }
}
