// Placeholder until the generator is wired in: an empty tool table.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(
        out.join("tools.rs"),
        "pub static INTEGRATION: Integration = Integration { name: \"malomo\", title: \"Malomo\", default_base_url: \"https://api.gomalomo.com\", headers: &[], auth_scheme: \"Bearer\" };\npub static TOOLS: &[ToolDef] = &[];\npub static SKIPPED: &[SkippedMethod] = &[];\n",
    )
    .expect("write tools.rs");
}
