import Foundation
import Store
import StoreTestSupport
import Testing
@testable import Workflow

/// What only a shared PostgreSQL store has to get right: one run at a time through the advisory lock,
/// and writers that take no lock (`storyloom work` tasks) committing at once without harm. The caching
/// behaviour itself is tested against both stores in CachingTests and PlanCacheTests.
@Suite(.enabled(if: TestPostgres.enabled, Comment(rawValue: TestPostgres.skipReason)))
struct PostgresStoreTests {
    @Test func aSecondRunOnOneDatabaseRefusesOrWaits() async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow(chainWorkflow)
        let address = try TestPostgres.freshDatabase()
        let media = s.root.appendingPathComponent("media")
        // Two processes' worth of stores: each its own connections, as two nodes would have.
        let first = try PostgresStore(address: address, mediaFolder: media)
        let second = try PostgresStore(address: address, mediaFolder: media)
        var held: (any RunLock)? = try first.lockRuns(wait: false)

        let error = await #expect(throws: StoreError.self) { try await s.run(store: second) }
        #expect(error?.message.contains("another storyloom run (storyloom run pid \(getpid())") == true)
        #expect(error?.message.contains("is using the store at \(address)") == true)
        #expect(try second.latestRun(workflow: "chain") == nil)

        // A waiting lock (--wait) is granted once the first lets go. Taken on a thread of its own: blocked in
        // the server, it must not hold one of the few threads the other tests run on.
        let granted = DispatchSemaphore(value: 0)
        let waiter = LockedValue<(any RunLock)?>(nil)
        Thread.detachNewThread {
            waiter.set(try? second.lockRuns(wait: true))
            granted.signal()
        }
        #expect(granted.wait(timeout: .now() + 0.3) == .timedOut)
        #expect(held != nil)   // held until here
        held = nil
        #expect(granted.wait(timeout: .now() + 30) == .success)
        #expect(waiter.get() != nil)
        waiter.set(nil)
        let summary = try await s.run(store: second)
        #expect(summary.status == "ok" && summary.ran("upper") == 9)
        #expect(try await s.run(store: first).steps.allSatisfy { $0.ran == 0 })
    }

    @Test func writersWithoutTheLockCommitTheSameResultsAtOnce() throws {
        let address = try TestPostgres.freshDatabase()
        let media = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-pg-\(UUID().uuidString)")
        let stores = try (0..<4).map { _ in try PostgresStore(address: address, mediaFolder: media) }
        // Every writer commits every result (a resubmitted task, two nodes on one item), in its own order.
        let results = (0..<40).map { i in
            StoredResult(fingerprint: "fp\(i)", stepKind: "template", status: .ok, outputs: Data("out \(i)".utf8), error: nil,
                         seconds: 0.01, vectors: ["e": [Float(i), 1, 2]], media: [(hash: "h\(i)", ext: "png")])
        }
        let failures = LockedErrors()
        DispatchQueue.concurrentPerform(iterations: stores.count) { w in
            do {
                for batch in results.shuffled().chunked(into: 5) {
                    let states = batch.map { ItemState(stepID: "step", itemID: $0.fingerprint, fingerprint: $0.fingerprint, status: .ok, components: nil) }
                    try stores[w].commit(results: Array(batch), states: states, workflow: "wf")
                }
            } catch {
                failures.append(error)
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        let stored = try stores[0].results(for: results.map(\.fingerprint))
        #expect(stored.count == 40)
        for r in results {
            #expect(stored[r.fingerprint]?.outputs == r.outputs)
            #expect(stored[r.fingerprint]?.vectors["e"] == r.vectors["e"])
        }
        let stats = try stores[0].stats()
        #expect(stats.results == 40 && stats.vectors == 40 && stats.workflows == ["wf": 40])
        #expect(try stores[0].stateIndex(workflow: "wf")["step"]?.count == 40)
    }

    @Test func theGenerationMovesWithEveryWrite() throws {
        let store = try PostgresStore(address: TestPostgres.freshDatabase(),
                                      mediaFolder: FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-pg-\(UUID().uuidString)"))
        let g0 = try store.generation()
        let r = StoredResult(fingerprint: "a", stepKind: "k", status: .ok, outputs: nil, error: nil, seconds: 0)
        try store.commit(results: [r], states: [ItemState(stepID: "s", itemID: "i", fingerprint: "a", status: .ok, components: nil)], workflow: "w")
        let g1 = try store.generation()
        #expect(g1 > g0)
        try store.pruneStates(workflow: "w", keepSteps: ["s"])   // nothing to drop
        #expect(try store.generation() == g1)
        try store.pruneStates(workflow: "w", keepSteps: [])
        #expect(try store.generation() > g1)
        #expect(try store.stateIndex(workflow: "w").isEmpty)
    }
}

final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T { lock.withLock { value } }
    func set(_ new: T) { lock.withLock { value = new } }
}

final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []
    func append(_ error: any Error) { lock.withLock { errors.append(error) } }
    var all: [any Error] { lock.withLock { errors } }
}

extension Array {
    func chunked(into size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
