import Foundation

/// Which store a workflow uses: a SQLite store folder (the default), or a PostgreSQL database plus the
/// shared folder that holds its media.
public enum StoreAddress: Sendable, Equatable, CustomStringConvertible {
    case sqlite(folder: URL)
    case postgres(PostgresAddress, mediaFolder: URL)

    /// True for a `store:` value that names a PostgreSQL database rather than a folder.
    public static func isPostgresURL(_ value: String) -> Bool {
        value.hasPrefix("postgresql://") || value.hasPrefix("postgres://")
    }

    public func open() throws -> any ResultStore {
        switch self {
        case .sqlite(let folder): return try ProjectStore(root: folder)
        case .postgres(let address, let media): return try PostgresStore(address: address, mediaFolder: media)
        }
    }

    public var description: String {
        switch self {
        case .sqlite(let folder): return folder.path
        case .postgres(let address, let media): return "\(address) (media in \(media.path))"
        }
    }
}

/// A PostgreSQL connection address from a URL: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE]`.
/// As libpq does, the password may come from `PGPASSWORD` instead, the user defaults to `PGUSER` or the
/// login name, the database to the user. The password never appears in ``description``.
public struct PostgresAddress: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS when the server offers it, without checking its certificate (libpq's default).
        case prefer
        /// TLS or fail, without checking the certificate (libpq's `require`).
        case require
        /// TLS with the certificate checked against the system's roots and the host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String, port: Int = 5432, user: String, password: String?, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Parses `url`; errors name the part that is wrong and never echo the password.
    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard StoreAddress.isPostgresURL(url), let c = URLComponents(string: url) else {
            throw StoreError("store URL \(Self.redact(url)) is not a PostgreSQL URL; expected postgresql://USER@HOST:PORT/DATABASE")
        }
        guard let host = c.host, !host.isEmpty else {
            throw StoreError("store URL \(Self.redact(url)) has no host; expected postgresql://USER@HOST:PORT/DATABASE")
        }
        self.host = host
        port = c.port ?? 5432
        user = c.user.flatMap { $0.removingPercentEncoding }.flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["PGUSER"] ?? NSUserName()
        password = c.password.flatMap { $0.removingPercentEncoding } ?? environment["PGPASSWORD"]
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
        tls = .prefer
        for item in c.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw StoreError("store URL \(Self.redact(url)): sslmode=\(item.value ?? "") is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            default:
                throw StoreError("store URL \(Self.redact(url)): unknown parameter \(item.name) (only sslmode is read)")
            }
        }
    }

    /// The URL without the password.
    public var description: String {
        // Parses back to the same address but for the password (Slurm tasks are handed this URL).
        "postgresql://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)" + (tls == .prefer ? "" : "?sslmode=\(tls.rawValue)")
    }

    /// `url` with any password replaced by `***`, for messages about a URL that did not parse.
    static func redact(_ url: String) -> String {
        guard let at = url.range(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at.lowerBound else { return url }
        let credentials = url[scheme.upperBound..<at.lowerBound]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
    }
}
