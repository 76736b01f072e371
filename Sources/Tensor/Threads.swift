import COpenBLAS
import Foundation
import Synchronization

/// The one place where Storyloom's compute thread count is set (`--threads`).
///
/// It governs both OpenBLAS's thread pool and Storyloom's own parallel loops
/// (`Threads.parallelFor`), so a benchmark at `--threads 2` really uses two cores.
public enum Threads {
    private static let current = Atomic<Int>(0)

    /// The number of cores this process may use.
    public static var available: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The thread count in effect (defaults to `available` until `set` is called).
    public static var count: Int {
        if let local = pthread_getspecific(localCountKey) { return Int(bitPattern: local) }
        return configured
    }

    /// The process-wide count, ignoring `withLocalCount`.
    static var configured: Int {
        let n = current.load(ordering: .relaxed)
        return n > 0 ? n : available
    }

    /// Runs `body` with `count` (and so `parallelFor`'s width) at `n` on this thread only, leaving
    /// OpenBLAS and other threads alone: how tests vary the width without racing parallel tests, and how
    /// a caller running its own workers (each item group of a small model's batch) keeps their loops narrow.
    public static func withLocalCount<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        let saved = pthread_getspecific(localCountKey)
        pthread_setspecific(localCountKey, UnsafeRawPointer(bitPattern: max(1, n)))
        defer { pthread_setspecific(localCountKey, saved) }
        return try body()
    }

    /// Sets the thread count for OpenBLAS and for Storyloom's parallel loops. Values below 1 mean "all cores".
    /// Waits until no OpenBLAS call is in flight (see ``BLASGate``).
    public static func set(_ n: Int) {
        BLASGate.configure(n >= 1 ? n : available)
    }

    /// Records the count; called by ``BLASGate`` with the gate empty.
    static func storeCount(_ n: Int) {
        current.store(n, ordering: .relaxed)
    }

    /// The kernel set OpenBLAS selected at load time (e.g. `SkylakeX`, `Haswell`); ``BLASKernels`` says
    /// who chose it and re-executes the process when OpenBLAS fell back to generic kernels.
    public static var blasCoreName: String { BLASKernels.coreName }

    /// Runs `body(i)` for `i` in `0..<n`, spread over `count` threads in contiguous chunks.
    ///
    /// Use for work made of many small independent BLAS calls (per-head attention), with
    /// OpenBLAS itself kept single-threaded for the duration via `singleThreadedBLAS`.
    /// Inside a `singleThreadedBLAS` section the workers inherit its mark, so their OpenBLAS calls
    /// run single-threaded without entering the gate again.
    public static func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        let workers = min(count, n)
        if workers <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        let inSection = BLASGate.insideSingleSection
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                // Pool threads outlive the loop: set the mark for this chunk only.
                let was = BLASGate.insideSingleSection
                if inSection != was { BLASGate.insideSingleSection = inSection }
                defer { if inSection != was { BLASGate.insideSingleSection = was } }
                let start = n * w / workers
                let end = n * (w + 1) / workers
                for i in start..<end { box.value(i) }
            }
        }
    }

    /// Runs `body` with OpenBLAS limited to one thread (so it can be called from `parallelFor`
    /// workers without oversubscribing the cores). Products on other threads wait for the section
    /// (or it for them) rather than run at a thread count that changes under them: see ``BLASGate``.
    public static func singleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        try BLASGate.singleThreaded(body)
    }

    /// Runs `body(g)` for `g` in `0..<groups` side by side, each group wholly on one thread (OpenBLAS and nested
    /// `parallelFor`s single-threaded meanwhile), and returns the results in order, throwing the first failed
    /// group's error. For work whose products are too small to share out over threads, or whose serial
    /// steps between products would leave a thread idle: a model's batch cut into one slice per thread.
    public static func singleThreadedGroups<T>(_ groups: Int, _ body: (Int) throws -> T) throws -> [T] {
        // One slot per group, each written by its own worker only.
        var outcomes = [Result<T, Error>?](repeating: nil, count: groups)
        outcomes.withUnsafeMutableBufferPointer { slots in
            let box = UncheckedBox(slots)
            singleThreadedBLAS {
                parallelFor(groups) { g in box.value[g] = Result { try withLocalCount(1) { try body(g) } } }
            }
        }
        return try outcomes.map { try $0!.get() }
    }
}

private let localCountKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
}()

/// Carries a non-Sendable closure into `concurrentPerform`; the callers above only run
/// it over disjoint index ranges.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A source and a destination buffer shared by parallel workers that read `src` and write disjoint ranges
/// of `dst` (the one such type; Swift cannot see that the ranges are disjoint, hence `@unchecked`).
public struct SharedPointers: @unchecked Sendable {
    public let src: UnsafePointer<Float>
    public let dst: UnsafeMutablePointer<Float>

    public init(src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>) {
        self.src = src
        self.dst = dst
    }
}
