import CHeap
import Foundation
import Synchronization

/// How the C heap serves the large, short-lived buffers of a forward pass: the one place that sets it.
///
/// A UNet or VAE step allocates and frees tensors of megabytes hundreds of times. glibc serves each block
/// above its mmap threshold (128 KB, raised on the fly up to 32 MB) with a fresh `mmap` and unmaps it on
/// `free`, and it trims the heap's free top back to the kernel; either way the next tensor page-faults
/// and the kernel zeroes every page again. In a 1-thread `bench sd` profile the kernel's `clear_page_erms`
/// had as many samples as sgemm's kernel (13% each, about 4 points of it the benchmark's own setup). With
/// chunk mmaps off (`M_MMAP_MAX` 0) and the top kept (`M_TRIM_THRESHOLD` 2 GB) freed blocks are reused as
/// they are, and the zeroing left is the setup's; the SD 64×64 step gained a few percent (README, Speed).
/// The process keeps the memory of its largest step until it exits, which its resident peak (`VmHWM`)
/// counted anyway. A user's own malloc settings (`GLIBC_TUNABLES` with `glibc.malloc.*`, or a `MALLOC_*_`
/// variable) are respected.
public enum HeapPolicy {
    public enum Decision: Sendable, Equatable {
        /// The user set malloc's behaviour: left as it is (the variable named).
        case userChoice(String)
        /// Freed blocks are kept and reused (no chunk mmaps, no trimming).
        case reuse
        /// Not glibc (or glibc refused the settings): the platform's allocator as it is.
        case unavailable
    }

    /// The environment variables through which glibc's malloc takes settings (glibc 2.26+ reads the
    /// `MALLOC_*_` aliases of its tunables).
    static let userVariables = ["MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                                "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST"]

    /// The decision as a pure function of the environment.
    public static func decide(environment: [String: String]) -> Decision {
        #if canImport(Glibc)
        if let tunables = environment["GLIBC_TUNABLES"], tunables.contains("glibc.malloc.") {
            return .userChoice("GLIBC_TUNABLES=\(tunables)")
        }
        if let name = userVariables.first(where: { environment[$0] != nil }) {
            return .userChoice("\(name)=\(environment[name]!)")
        }
        return .reuse
        #else
        return .unavailable
        #endif
    }

    private static let chosen = Mutex<Decision?>(nil)

    /// What this process runs with (``chooseAtLaunch`` not called: glibc's defaults, reported as such).
    public static var current: Decision? { chosen.withLock { $0 } }

    /// Call first thing in `main`, before the first large allocation.
    public static func chooseAtLaunch() {
        var decision = decide(environment: ProcessInfo.processInfo.environment)
        if decision == .reuse, sl_heap_reuse_freed_blocks() == 0 { decision = .unavailable }
        chosen.withLock { $0 = decision }
    }

    /// One line for `doctor` and benchmark notes.
    public static var description: String {
        switch current {
        case .reuse: return "heap: freed blocks reused (glibc M_MMAP_MAX 0, M_TRIM_THRESHOLD 2 GB; chosen by Storyloom)"
        case .userChoice(let setting): return "heap: \(setting) from the environment, respected"
        case .unavailable: return "heap: the platform's allocator as it is (not glibc, or it refused the settings)"
        case nil: return "heap: glibc's defaults (not chosen at launch)"
        }
    }
}
