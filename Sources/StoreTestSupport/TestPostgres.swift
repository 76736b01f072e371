import Foundation
import Store

/// The PostgreSQL server the tests of the PostgreSQL store use: `STORYLOOM_TEST_POSTGRES`, a URL such as
/// `postgresql://postgres@127.0.0.1:55432/postgres` (`Tools/ci/postgres.sh start` starts one and prints it).
/// Without it those tests skip, saying why; in CI (`CI=true`) they run, and fail if the variable is missing.
public enum TestPostgres {
    public static let variable = "STORYLOOM_TEST_POSTGRES"

    public static var url: String? {
        ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether the PostgreSQL tests run: a server is named, or this is CI, which must run them.
    public static var enabled: Bool { url != nil || ProcessInfo.processInfo.environment["CI"] == "true" }

    public static let skipReason = """
        \(variable) is not set, so the PostgreSQL store is not tested: start a server with \
        `eval "$(bash Tools/ci/postgres.sh start)"` (or set \(variable)=postgresql://USER@HOST:PORT/DATABASE)
        """

    /// A new, empty database on the test server, so that tests running in parallel never share tables.
    public static func freshDatabase() throws -> PostgresAddress {
        guard let url else { throw StoreError("\(variable) must be set where the PostgreSQL tests run (CI=true): \(skipReason)") }
        let name = "storyloom_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        return try PostgresStore.createDatabase(String(name), server: PostgresAddress(url: url))
    }

    /// The URL of `address`, password included (for a child process's `--store`).
    public static func url(of address: PostgresAddress) -> String {
        let credentials = address.password.map { "\(address.user):\($0)" } ?? address.user
        return "postgresql://\(credentials)@\(address.host):\(address.port)/\(address.database)?sslmode=\(address.tls.rawValue)"
    }
}
