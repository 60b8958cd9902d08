//! Rebuilds the server when the dashboard in `dist/` changes (or appears), so a release build
//! always embeds the current one.

fn main() {
    println!("cargo:rerun-if-changed=../dist");
}
