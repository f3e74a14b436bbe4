//! Compiles specs/ and templates/ into OUT_DIR/tools.rs (see the generator
//! crate); a spec error fails the build with the file, line and field.

fn main() {
    let manifest = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(e) = generator::build_script(&manifest, &out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
