import Foundation
import Synchronization
import Testing
@testable import Tensor

/// OpenBLAS's thread count is process-wide, and a product's bits depend on it: its single-threaded
/// and threaded sgemm drivers split K differently (0.3.21 `driver/level3/level3.c` rounds the half
/// split up to GEMM_UNROLL_M, `level3_thread.c` does not), so a toggle by one thread must never
/// overlap another thread's product. These products are compared bit for bit while other threads
/// keep entering single-threaded sections.
@Suite("BLAS gate")
struct BLASGateTests {
    /// Above OpenBLAS's threading threshold (M·N·K > 262144), K not a multiple of common GEMM_Q values.
    static let shapes: [(m: Int, n: Int, k: Int)] = [(96, 80, 777), (64, 130, 1001), (150, 64, 515), (72, 72, 1203)]

    static func operands(_ s: (m: Int, n: Int, k: Int), seed: UInt64) throws -> (Tensor, Tensor) {
        (try Tensor(shape: [s.m, s.k], data: OpsTests.values(s.m * s.k, seed: seed)),
         try Tensor(shape: [s.k, s.n], data: OpsTests.values(s.k * s.n, seed: seed + 1)))
    }

    @Test("products are bit-exact while other threads run singleThreadedBLAS sections")
    func concurrentSections() throws {
        let pairs = try Self.shapes.enumerated().map { try Self.operands($1, seed: 100 + UInt64($0) * 2) }
        // References, each computed alone: at the configured thread count and inside a section.
        let plain = try pairs.map { try matmul($0.0, $0.1).data }
        let single = try pairs.map { p in try Threads.singleThreadedBLAS { try matmul(p.0, p.1).data } }

        let mismatches = Atomic<Int>(0), checkersLeft = Atomic<Int>(3)
        let group = DispatchGroup()
        let inputs = UncheckedSendable(pairs)
        for c in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                for round in 0..<40 {
                    let i = (round + c) % inputs.value.count
                    if (try? matmul(inputs.value[i].0, inputs.value[i].1).data) != plain[i] {
                        mismatches.add(1, ordering: .relaxed)
                    }
                }
                checkersLeft.subtract(1, ordering: .relaxed)
                group.leave()
            }
        }
        for _ in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                var round = 0
                while checkersLeft.load(ordering: .relaxed) > 0 {
                    Threads.singleThreadedBLAS {
                        Threads.parallelFor(2) { w in
                            let i = (round + w) % inputs.value.count
                            if (try? matmul(inputs.value[i].0, inputs.value[i].1).data) != single[i] {
                                mismatches.add(1, ordering: .relaxed)
                            }
                        }
                    }
                    round += 1
                }
                group.leave()
            }
        }
        group.wait()
        #expect(mismatches.load(ordering: .relaxed) == 0, "products differed from their references")
    }

    /// Whether a configured-mode entry on another thread gets in while a single-threaded section is
    /// held on a gate of its own (its thread counts recorded, not applied to OpenBLAS).
    static func productEntersDuringSection(configured: Int) -> (entered: Bool, applied: [Int]) {
        let applied = Mutex<[Int]>([])
        let gate = GateState(configuredCount: { configured }, setThreads: { n in applied.withLock { $0.append(n) } })
        gate.enter(single: true)
        let entered = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            gate.enter(single: false)
            entered.signal()
            gate.leave()
            done.signal()
        }
        // Admitted at once or never while the section is held: 2 s only bounds the wait for a thread start.
        let got = entered.wait(timeout: .now() + 2) == .success
        gate.leave()
        if !got { done.wait() }
        return (got, applied.withLock { $0 })
    }

    @Test("at one configured thread a section and another thread's product share the gate; at two they exclude each other")
    func oneThreadModesShare() {
        let one = Self.productEntersDuringSection(configured: 1)
        #expect(one.entered, "a product waited for another thread's single-threaded section at --threads 1")
        #expect(one.applied == [1])
        let two = Self.productEntersDuringSection(configured: 2)
        #expect(!two.entered, "a product at 2 threads ran during a single-threaded section")
        #expect(two.applied == [1, 2])
    }

    @Test("products at or under the ungated size give the same bits inside and outside single-threaded sections")
    func ungatedBound() throws {
        // K = 777 sits where the two drivers' K splits differ (for common GEMM_Q); M·N·K just under and over the bound.
        let under = (m: 16, n: BLAS.sgemmSingleThreadedMax / (16 * 777), k: 777)
        let over = (m: 16, n: under.n + 4, k: 777)
        #expect(under.m * under.n * under.k <= BLAS.sgemmSingleThreadedMax && over.m * over.n * over.k > BLAS.sgemmSingleThreadedMax)
        for (i, s) in [under, over].enumerated() {
            let (a, b) = try Self.operands(s, seed: 300 + UInt64(i) * 2)
            let plain = try matmul(a, b).data
            let single = try Threads.singleThreadedBLAS { try matmul(a, b).data }
            let same = plain == single
            if i == 0 {
                #expect(same, "OpenBLAS threads \(s) products: the ungated bound is too high for this build")
            } else if same {
                // Not a failure: the over-bound shape shows no difference on these kernels, so the check above proves less.
                print("BLASGateTests: \(s) gives the same bits threaded and single-threaded on this OpenBLAS")
            }
        }
    }

    @Test("no source file calls OpenBLAS except through the gate")
    func oneEntry() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        #expect(files.count > 10)
        let call = try Regex(#"(cblas_|openblas_set_num_threads)[a-z_0-9]*\("#)
        for file in files where file.lastPathComponent != "BLASGate.swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.firstMatch(of: call) == nil, "\(file.lastPathComponent) calls OpenBLAS directly")
        }
    }
}

/// Read-only test inputs shared by the threads above.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
