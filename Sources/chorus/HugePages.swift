#if canImport(Glibc)
import Glibc
#endif

/// Huge pages for `chorus simulate`.
///
/// A simulation of thousands of peers holds gigabytes of small tables (every peer's view of every
/// other: n² entries) and reads them at random, one peer after another. With 4 KB pages nearly
/// every such read also misses the TLB and walks page tables that no longer fit in the caches:
/// at 4096 members that was a tenth of the run (docs/performance.md). glibc reads its malloc
/// settings only when a process starts, so the simulator starts itself once more with them set:
/// one arena (the simulation runs on one thread), large blocks from the heap rather than from
/// mappings of their own, the heap grown 64 MB at a time and given transparent huge pages.
/// Results are unchanged (same seed, same files); only memory is reached faster.
/// `CHORUS_HUGE_PAGES=0`, or a `GLIBC_TUNABLES` of one's own, leaves the process as it is.
enum HugePages {
    static let tunables = "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.top_pad=67108864:glibc.malloc.hugetlb=1"

    /// Replaces this process by itself with `tunables` set; returns (changing nothing) when they
    /// are set already, when turned off, or when the new start fails.
    static func restartWithTunables() {
        #if os(Linux)
        if let current = getenv("GLIBC_TUNABLES") {
            // Ours: this is the restarted process. Children (the plot) need not inherit them.
            if String(cString: current) == tunables { unsetenv("GLIBC_TUNABLES") }
            return
        }
        if let setting = getenv("CHORUS_HUGE_PAGES"), String(cString: setting) == "0" { return }
        setenv("GLIBC_TUNABLES", tunables, 1)
        var arguments = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", arguments)
        // Only reached if the new start failed: go on as we are.
        for argument in arguments { free(argument) }
        unsetenv("GLIBC_TUNABLES")
        #endif
    }
}
