import Foundation
@testable import Store
import StoreTestSupport
import Testing

/// A store whose connection the server ends carries on over a new one.
@Suite(.enabled(if: TestPostgres.enabled, Comment(rawValue: TestPostgres.skipReason)))
struct PostgresConnectionTests {
    @Test func aDroppedConnectionIsOpenedAgainAndTheWriteRepeated() throws {
        let address = try TestPostgres.freshDatabase()
        let media = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-pg-\(UUID().uuidString)")
        let store = try PostgresStore(address: address, mediaFolder: media)
        let admin = try PostgresConnectionBridge(address: address, purpose: "test")
        func endOtherSessions() throws {
            let ended = try admin.query("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                """)
            #expect(ended.count == 1)
            usleep(100_000)   // the server closes the socket after answering
        }
        try endOtherSessions()
        #expect(try store.generation() == 0)
        try endOtherSessions()
        let r = StoredResult(fingerprint: "a", stepKind: "k", status: .ok, outputs: Data("x".utf8), error: nil, seconds: 0)
        try store.commit(results: [r], states: [ItemState(stepID: "s", itemID: "i", fingerprint: "a", status: .ok, components: nil)], workflow: "w")
        #expect(try store.results(for: ["a"])["a"]?.outputs == Data("x".utf8))
        #expect(try store.stateIndex(workflow: "w")["s"]?["i"]?.fingerprint == "a")
    }

    @Test func aStatementErrorIsNotRetriedAndSaysWhatTheServerSaid() throws {
        let address = try TestPostgres.freshDatabase()
        let bridge = try PostgresConnectionBridge(address: address, purpose: "test")
        let error = #expect(throws: StoreError.self) { try bridge.query("SELECT * FROM no_such_table") }
        #expect(error?.message == "PostgreSQL store \(address): relation \"no_such_table\" does not exist [SQLSTATE 42P01]")
    }
}
