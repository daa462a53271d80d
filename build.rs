//! Link time only: on Linux with glibc, take the unwinder from GCC's static `libgcc_eh.a`
//! instead of the shared `libgcc_s.so.1`. Loading libgcc_s runs its CPU-feature probe
//! (`__cpu_indicator_init`, about ten `cpuid` instructions, each a VM exit on a virtual
//! server) before `main`: about 0.15 ms of every hook run, for a library only a panic uses.
//! Rust's standard library still asks for `-lgcc_s`; with the unwinder already linked, the
//! linker's `--as-needed` drops it. Unwinding (a panic caught and turned into a refusal) works
//! the same: the code is GCC's either way.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // `-bundle`: not copied into the rlib; the final link gets `-lgcc_eh` right after
        // this crate, ahead of the standard library's `-lgcc_s`.
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
