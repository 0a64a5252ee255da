//! Allocator behaviour for a long-running multi-threaded process.
//!
//! glibc's malloc gives a thread that finds its arena locked another one, up to eight per
//! core, and each arena keeps what was freed in it. A tokio runtime moves tasks (a page's
//! fetch, parse and markdown) between worker and blocking threads, so the arenas multiply
//! with the cores and each holds its own free memory. Two arenas: peak RSS of a crawl 7-13 %
//! lower at the same CPU time (`infra/scripts/bench-crawl --compare-allocators`; figures
//! in README, "Allocator"), with no new dependency.
//!
//! `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` in the environment wins, to compare settings.

/// Arenas for the whole process: the main thread's and one shared by the others.
pub const ARENA_MAX: i32 = 2;

/// Applies [`ARENA_MAX`] unless the environment sets malloc parameters. Call first thing
/// in `main`, before the runtime starts its threads. Returns whether it changed anything
/// (false off glibc).
pub fn tune() -> bool {
    let from_env = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some();
    !from_env && apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: mallopt only sets a malloc parameter; called before other threads exist.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}
