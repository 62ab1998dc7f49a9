//! Writes the TypeScript bindings of the app's commands to ui/src/bindings.ts.

fn main() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    match kluis_tray::bindings_ts() {
        Ok(text) => {
            if let Err(e) = std::fs::write(&out, text) {
                eprintln!("bindings: {}: {e}", out.display());
                std::process::exit(1);
            }
            println!("wrote {}", out.display());
        }
        Err(e) => {
            eprintln!("bindings: {e}");
            std::process::exit(1);
        }
    }
}
