//! The dashboard's entry point: trunk builds this binary to wasm. Everything else is in
//! the library (see its `# Layout`).

fn main() {
    #[cfg(target_arch = "wasm32")]
    wirelab_frontend::start();
}
