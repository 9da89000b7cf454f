//! The `forcelake` binary: parse arguments, set up logging, run, map errors to exit codes
//! (0 done or cleanly paused, 1 a chunk failed, 2 configuration/usage/authentication).

use clap::Parser;
use forcelake::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

/// glibc's allocator, tuned for a streaming process with a few worker threads: a fixed mmap
/// threshold (by default it rises after the first large free, and multi-MB page buffers then
/// fragment the heap), and two arenas rather than eight per core. Peak RSS then follows the
/// data in flight rather than the history of allocations (see README, Performance).
/// The emulator is tuned the other way: it builds a multi-MB answer per request, and mapping
/// fresh pages for each one costs it a quarter of its CPU; its memory is not the one measured.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator(emulator: bool) {
    // glibc's own variables, when set, win (glibc reads them itself).
    let set = |k: &str| std::env::var_os(k).is_some();
    // SAFETY: mallopt only sets allocator parameters; called before any other thread starts.
    unsafe {
        if emulator {
            if !set("MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
            }
            if !set("MALLOC_TRIM_THRESHOLD_") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
            return;
        }
        if !set("MALLOC_MMAP_THRESHOLD_") {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        }
        if !set("MALLOC_ARENA_MAX") {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator(_emulator: bool) {}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tune_allocator(matches!(cli.command, cli::Command::Emulator(_)));
    let default = match cli.verbose {
        0 => "forcelake=info",
        1 => "forcelake=debug",
        _ => "forcelake=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match cli.log_format {
        LogFormat::Json => {
            forcelake::run::progress::PLAIN_PROGRESS
                .store(true, std::sync::atomic::Ordering::Relaxed);
            builder.json().init()
        }
        LogFormat::Human => builder.init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let (json, log_json) = (cli.json, cli.log_format == LogFormat::Json);
    match rt.block_on(cli::run(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            if log_json {
                tracing::error!(exit_code = code, "{e}");
            } else {
                eprintln!("error: {e}");
            }
            if json {
                // A scheduler that keeps stdout's last line gets the failure, not nothing.
                println!(
                    "{}",
                    serde_json::json!({"error": e.to_string(), "exit_code": code})
                );
            }
            std::process::ExitCode::from(code)
        }
    }
}
