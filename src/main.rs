fn main() -> anyhow::Result<()> {
    println!("{} tools", malomo_mcp::catalog::TOOLS.len());
    Ok(())
}
