import COpenBLAS
import Foundation

/// Every call into OpenBLAS goes through here (`sgemm`, `sgemv`; a test checks that no other file
/// calls `cblas_`), so that a change of OpenBLAS's thread count never overlaps a product on
/// another thread.
///
/// Why: OpenBLAS 0.3.21 (pthreads) has one process-wide thread count and no per-call setting, and a
/// product's bits depend on it: above its threading threshold, sgemm runs the threaded driver
/// (`driver/level3/level3_thread.c`), which splits a K block between GEMM_Q and 2·GEMM_Q at
/// `(min_l + 1) / 2`, where the single-threaded driver (`level3.c`) rounds that half up to
/// GEMM_UNROLL_M — a different summation order. So a `singleThreadedBLAS` section on one thread
/// (attention) used to change the rounding of another thread's large products (same-seed images
/// that differed by a level), and a section ending early re-threaded another section's calls.
///
/// The gate has two modes, each shared by any number of holders: *configured* (a single product at
/// `Threads.count`) and *single* (a `singleThreadedBLAS` section; its thread and the `parallelFor`
/// workers it starts are marked thread-locally and call OpenBLAS directly). The thread count is
/// changed only when the gate is empty. A waiter of the other mode stops new arrivals, so neither
/// mode starves the other. At a configured count of 1 the two modes are the same OpenBLAS state and
/// admit each other: under `run --jobs 2 --threads 1` one job's products must not wait for the other
/// job's attention.
enum BLASGate {
    private static let state = GateState()

    /// The thread-local mark of a single-threaded section (the thread that entered it, and the
    /// `parallelFor` workers it runs).
    static var insideSingleSection: Bool {
        get { pthread_getspecific(sectionKey) != nil }
        set { pthread_setspecific(sectionKey, newValue ? UnsafeRawPointer(bitPattern: 1) : nil) }
    }

    /// Runs one OpenBLAS call: directly inside a single-threaded section, else in configured mode.
    @inline(__always)
    static func call(_ body: () -> Void) {
        if insideSingleSection { body(); return }
        state.enter(single: false)
        defer { state.leave() }
        body()
    }

    /// Runs `body` with OpenBLAS at one thread, marked as a single-threaded section.
    static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        if insideSingleSection { return try body() }
        state.enter(single: true)
        insideSingleSection = true
        defer {
            insideSingleSection = false
            state.leave()
        }
        return try body()
    }

    /// Sets the configured thread count once no call is in flight.
    static func configure(_ threads: Int) {
        precondition(!insideSingleSection, "Threads.set inside a singleThreadedBLAS section")
        state.configure(threads)
    }
}

private let sectionKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
}()

/// The gate's state, under one condition lock.
final class GateState: @unchecked Sendable {
    private let condition = NSCondition()
    /// The configured count (``Threads/configured``) and how a count is applied (`openblas_set_num_threads`),
    /// replaceable so that tests can drive a gate of their own.
    private let configuredCount: () -> Int
    private let setThreads: (Int) -> Void
    init(configuredCount: @escaping () -> Int = { Threads.configured },
         setThreads: @escaping (Int) -> Void = { openblas_set_num_threads(Int32($0)) }) {
        self.configuredCount = configuredCount
        self.setThreads = setThreads
    }
    private var single = false
    private var holders = 0
    private var waitingSingle = 0, waitingConfigured = 0
    /// The count last given to `openblas_set_num_threads` (0: not yet set by us).
    private var applied = 0

    private func admits(single wanted: Bool) -> Bool {
        if holders == 0 { return true }
        return single == wanted && (wanted ? waitingConfigured : waitingSingle) == 0
    }

    func enter(single: Bool) {
        condition.lock()
        defer { condition.unlock() }
        // A single-threaded section at a configured count of 1 changes nothing: it holds configured mode.
        let wanted = single && configuredCount() != 1
        if !admits(single: wanted) {
            if wanted { waitingSingle += 1 } else { waitingConfigured += 1 }
            repeat { condition.wait() } while !admits(single: wanted)
            if wanted { waitingSingle -= 1 } else { waitingConfigured -= 1 }
        }
        if holders == 0 {
            self.single = wanted
            apply(wanted ? 1 : configuredCount())
        }
        holders += 1
    }

    func leave() {
        condition.lock()
        holders -= 1
        if holders == 0 { condition.broadcast() }
        condition.unlock()
    }

    func configure(_ threads: Int) {
        condition.lock()
        defer { condition.unlock() }
        while holders > 0 { condition.wait() }
        Threads.storeCount(threads)
        single = false
        apply(threads)
    }

    /// Only with no holders: no OpenBLAS call is in flight on any thread.
    private func apply(_ threads: Int) {
        guard threads != applied else { return }
        setThreads(threads)
        applied = threads
    }
}

/// Gated OpenBLAS entry points, with `cblas_sgemm` / `cblas_sgemv`'s arguments.
///
/// Products OpenBLAS runs on one thread whatever the count skip the gate: they cannot be changed by a
/// toggle, and they need not wait for another thread's section. OpenBLAS 0.3.21 runs sgemm single-threaded
/// when M·N·K ≤ 65536·GEMM_MULTITHREAD_THRESHOLD (`interface/gemm.c`; 4 unless the build sets it) and
/// sgemv when M·N < 2304·GEMM_MULTITHREAD_THRESHOLD (`interface/gemv.c`). `BLASGateTests` checks the
/// sgemm bound against the loaded library.
enum BLAS {
    static let sgemmSingleThreadedMax = 65536 * 4
    static let sgemvSingleThreadedBelow = 2304 * 4

    @inline(__always)
    static func sgemm(_ order: CBLAS_ORDER, _ transA: CBLAS_TRANSPOSE, _ transB: CBLAS_TRANSPOSE,
                      _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int32,
                      _ b: UnsafePointer<Float>, _ ldb: Int32, _ beta: Float, _ c: UnsafeMutablePointer<Float>,
                      _ ldc: Int32) {
        if Int(m) * Int(n) * Int(k) <= sgemmSingleThreadedMax {
            cblas_sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        } else {
            BLASGate.call { cblas_sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) }
        }
    }

    @inline(__always)
    static func sgemv(_ order: CBLAS_ORDER, _ trans: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ alpha: Float,
                      _ a: UnsafePointer<Float>, _ lda: Int32, _ x: UnsafePointer<Float>, _ incx: Int32,
                      _ beta: Float, _ y: UnsafeMutablePointer<Float>, _ incy: Int32) {
        if Int(m) * Int(n) < sgemvSingleThreadedBelow {
            cblas_sgemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy)
        } else {
            BLASGate.call { cblas_sgemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy) }
        }
    }
}
