import Foundation
import Logging
import PostgresNIO

/// One PostgreSQL connection used through blocking calls, as the store protocol is synchronous.
///
/// The connection lives on a NIO event loop thread (NIO's shared group), never on Swift concurrency's
/// cooperative pool, and callers block on the futures with `wait()`: a caller on a cooperative thread
/// holds that thread, as a SQLite call does, but nothing it waits for needs one. Calls are serialized by
/// a lock, so a transaction's statements are never interleaved with another caller's.
///
/// A store's connection that drops (a server restart, a network blip, an idle timeout on a long job) is
/// opened again and the statement or transaction tried once more: every write is safe to repeat. The run
/// lock's connection is never reopened, as its lock went with it.
final class PostgresConnectionBridge: @unchecked Sendable {
    let address: PostgresAddress
    private let configuration: PostgresConnection.Configuration
    private let reconnects: Bool
    private var connection: PostgresConnection
    private let lock = NSLock()
    private let logger = Logger(label: "storyloom.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    private static let ids = NSLock()
    nonisolated(unsafe) private static var nextID = 0

    /// Connects; `purpose` goes into the server's `application_name` (seen in `pg_stat_activity` and in
    /// the message naming who holds the run lock).
    init(address: PostgresAddress, purpose: String, reconnects: Bool = true) throws {
        self.address = address
        self.reconnects = reconnects
        var config = PostgresConnection.Configuration(host: address.host, port: address.port, username: address.user,
                                                      password: address.password, database: address.database,
                                                      tls: try Self.tls(address.tls))
        let host = ProcessInfo.processInfo.hostName
        config.options.additionalStartupParameters = [("application_name", "storyloom \(purpose) pid \(getpid()) on \(host)")]
        configuration = config
        connection = try Self.connect(config, address: address, logger: logger)
    }

    private static func connect(_ config: PostgresConnection.Configuration, address: PostgresAddress, logger: Logger) throws -> PostgresConnection {
        let id = ids.withLock { nextID += 1; return nextID }
        do {
            return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: config,
                                                  id: id, logger: logger).wait()
        } catch {
            throw StoreError("cannot connect to the PostgreSQL store \(address): \(message(error))")
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
        try lock.withLock { try retryingOnce { try run(query) } }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. After a
    /// dropped connection the whole transaction runs again on a new one.
    func transaction<T>(_ body: (Transaction) throws -> T) throws -> T {
        try lock.withLock {
            try retryingOnce {
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
    }

    /// A statement failed because the connection is gone (not because of the statement).
    private struct ConnectionLost: Error {
        var error: StoreError
    }

    /// `body`, and once more on a new connection if the first try lost it (the lock is held).
    private func retryingOnce<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let lost as ConnectionLost {
            guard reconnects else { throw lost.error }
            try? connection.close().wait()
            connection = try Self.connect(configuration, address: address, logger: logger)
            do { return try body() } catch let again as ConnectionLost { throw again.error }
        }
    }

    /// Statements inside ``transaction(_:)`` (the lock is held).
    struct Transaction {
        fileprivate let bridge: PostgresConnectionBridge
        @discardableResult
        func query(_ query: PostgresQuery) throws -> [PostgresRow] { try bridge.run(query) }
    }

    private func run(_ query: PostgresQuery) throws -> [PostgresRow] {
        // A query written to a connection already closed (the server ended it while idle) never completes.
        guard !connection.isClosed else {
            throw ConnectionLost(error: StoreError("PostgreSQL store \(address): the server closed the connection"))
        }
        do {
            return try connection.query(query, logger: logger).wait().rows
        } catch {
            let failure = StoreError("PostgreSQL store \(address): \(Self.message(error))")
            if Self.isConnectionLoss(error) { throw ConnectionLost(error: failure) }
            throw failure
        }
    }

    /// The connection closed or broke, or the server ended the session (SQLSTATE class 08, or 57P01–57P03:
    /// administrator, crash or startup shutdown).
    static func isConnectionLoss(_ error: any Error) -> Bool {
        guard let e = error as? PSQLError else { return false }
        if [.clientClosedConnection, .serverClosedConnection, .connectionError, .uncleanShutdown].contains(e.code) { return true }
        guard let state = e.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
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
