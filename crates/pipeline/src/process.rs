//! What the pipeline asks of the process it runs in.

/// Turns transparent huge pages off for the whole process (Linux; nothing
/// elsewhere). Called first thing by `profiles-sync` and by the benchmarks
/// that run its server in-process.
///
/// mimalloc asks for huge pages on its large regions, and a batch's column
/// buffers — filled on the thread that builds rows, freed on the one that
/// lands them, every batch — made the kernel zero whole 2 MB pages again
/// and again, often for memory used briefly (perf: page clearing was a
/// large share of the rows stage; `bench` with and without in
/// BENCHMARKS.md). The flag is the process's (DuckDB's allocations too)
/// and only stops huge pages: where the call is refused (an old kernel, a
/// sandbox) a run is the same, slower.
pub fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
