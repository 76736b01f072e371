import Foundation
import Logging
import PostgresNIO

/// One PostgreSQL connection used through blocking calls, as the store protocol is synchronous.
///
/// The connection lives on a NIO event loop thread (NIO's shared group), never on Swift concurrency's
/// cooperative pool, and callers block on the futures with `wait()`: a caller on a cooperative thread
/// holds that thread, as a SQLite call does, but nothing it waits for needs one. Calls are serialized by
/// a lock, so a transaction's statements are never interleaved with another caller's.
final class PostgresConnectionBridge: @unchecked Sendable {
    let address: PostgresAddress
    private let connection: PostgresConnection
    private let lock = NSLock()
    private let logger = Logger(label: "storyloom.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    private static let ids = NSLock()
    nonisolated(unsafe) private static var nextID = 0

    /// Connects; `purpose` goes into the server's `application_name` (seen in `pg_stat_activity` and in
    /// the message naming who holds the run lock).
    init(address: PostgresAddress, purpose: String) throws {
        self.address = address
        var config = PostgresConnection.Configuration(host: address.host, port: address.port, username: address.user,
                                                      password: address.password, database: address.database,
                                                      tls: try Self.tls(address.tls))
        let host = ProcessInfo.processInfo.hostName
        config.options.additionalStartupParameters = [("application_name", "storyloom \(purpose) pid \(getpid()) on \(host)")]
        let id = Self.ids.withLock { Self.nextID += 1; return Self.nextID }
        do {
            connection = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: config,
                                                        id: id, logger: logger).wait()
        } catch {
            throw StoreError("cannot connect to the PostgreSQL store \(address): \(Self.message(error))")
        }
    }

    deinit {
        try? connection.close().wait()
    }

    private static func tls(_ mode: PostgresAddress.TLSMode) throws -> PostgresConnection.Configuration.TLS {
        var config = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable: return .disable
        case .prefer:
            config.certificateVerification = .none
            return .prefer(try NIOSSLContext(configuration: config))
        case .require:
            config.certificateVerification = .none
            return .require(try NIOSSLContext(configuration: config))
        case .verifyFull:
            return .require(try NIOSSLContext(configuration: config))
        }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    func query(_ query: PostgresQuery) throws -> [PostgresRow] {
        try lock.withLock { try run(query) }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    func transaction<T>(_ body: (Transaction) throws -> T) throws -> T {
        try lock.withLock {
            try run("BEGIN")
            do {
                let result = try body(Transaction(bridge: self))
                try run("COMMIT")
                return result
            } catch {
                _ = try? run("ROLLBACK")
                throw error
            }
        }
    }

    /// Statements inside ``transaction(_:)`` (the lock is held).
    struct Transaction {
        fileprivate let bridge: PostgresConnectionBridge
        @discardableResult
        func query(_ query: PostgresQuery) throws -> [PostgresRow] { try bridge.run(query) }
    }

    private func run(_ query: PostgresQuery) throws -> [PostgresRow] {
        do {
            return try connection.query(query, logger: logger).wait().rows
        } catch {
            throw StoreError("PostgreSQL store \(address): \(Self.message(error))")
        }
    }

    /// What the server or the connection said, without the query's bound values (postgres-nio's own
    /// description hides everything, its debug description shows too much).
    static func message(_ error: any Error) -> String {
        guard let e = error as? PSQLError else { return "\(error)" }
        if let info = e.serverInfo, let message = info[.message] {
            var text = message
            if let detail = info[.detail] { text += " (\(detail))" }
            if let state = info[.sqlState] { text += " [SQLSTATE \(state)]" }
            return text
        }
        if let underlying = e.underlying { return "\(e.code): \(underlying)" }
        return "\(e.code)"
    }
}
