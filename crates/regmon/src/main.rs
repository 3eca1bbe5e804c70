//! The `regmon` binary: the command line over the regmon library (see
//! `lib.rs` for how the monitor is built, `cli/` for the commands).

mod cli;

/// A scan allocates and frees a path per value, on two threads (the scan
/// and the comparison): mimalloc handles that far better than glibc's malloc.
#[cfg(not(windows))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
