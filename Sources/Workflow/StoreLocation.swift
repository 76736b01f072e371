import Foundation
import Stories
import Store

/// `--store` and `--media` as given on the command line (relative to the current directory).
public struct StoreOptions: Sendable {
    public var store: String?
    public var media: String?

    public init(store: String? = nil, media: String? = nil) {
        self.store = store
        self.media = media
    }
}

extension WorkflowSpec {
    /// The variable that names the shared media folder of a PostgreSQL store when neither `--media` nor
    /// the workflow's `media:` does.
    public static let mediaVariable = "STORYLOOM_MEDIA"

    /// The project store folder: `--store` from the command line (relative to the current directory),
    /// else the file's `store:` (relative to the workflow file's folder), else `./Output/store`.
    /// Both may be absolute or start with `~` (see ``UserPath``).
    public func storeRoot(commandLine: String?) -> URL {
        if let commandLine { return UserPath.commandLine(commandLine) }
        if let store { return UserPath.resolve(store, relativeTo: folder) }
        return UserPath.commandLine("Output/store")
    }

    /// The store: `--store` else `store:` else `./Output/store`, a folder (SQLite) or a `postgresql://` URL.
    /// A PostgreSQL store's files go to the shared folder named by `--media`, else `media:` (relative to the
    /// workflow file's folder), else `$STORYLOOM_MEDIA`.
    public func storeAddress(_ options: StoreOptions,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StoreAddress {
        let value = options.store ?? store
        guard let value, StoreAddress.isPostgresURL(value) else {
            if options.media != nil || media != nil {
                let whence = options.media != nil ? "--media" : "media: in \(file.path)"
                throw StoreError("\(whence) names a shared media folder, which only a PostgreSQL store (store: postgresql://…) uses; a SQLite store keeps its media in <store>/media")
            }
            return .sqlite(folder: storeRoot(commandLine: options.store).standardizedFileURL)
        }
        let address = try PostgresAddress(url: value, environment: environment)
        let specFolder = folder
        let mediaFolder = options.media.map(UserPath.commandLine)
            ?? media.map { UserPath.resolve($0, relativeTo: specFolder) }
            ?? environment[Self.mediaVariable].flatMap { $0.isEmpty ? nil : UserPath.commandLine($0) }
        guard let mediaFolder else {
            throw StoreError("""
                the store \(address) is a PostgreSQL database, and its media need a folder that every node sees: \
                give it with `media: DIR` in \(file.path), --media DIR, or \(Self.mediaVariable)=DIR
                """)
        }
        return .postgres(address, mediaFolder: mediaFolder.standardizedFileURL)
    }
}
